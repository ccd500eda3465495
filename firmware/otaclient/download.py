"""Fetch one OTA file from the CH, pipelined, and feed its bytes strictly in file order.

Image Page Requests (the next asked while half a page is still to come) or a window of
Image Block Requests keep the link busy; a gap or silence re-requests from the first
missing byte. It does not verify or store: `feed` (the verifier) does. Out-of-order
blocks are dropped, not buffered.
"""

from micropython import const

from otaclient import zcl_client

try:
    from time import ticks_diff
except ImportError:

    def ticks_diff(a, b):
        return a - b


RUNNING = const(0)
DONE = const(1)  # every byte fed
ABANDONED = const(2)  # CH said ABORT, or too many timeouts: drop, keep staged progress
PAUSED = const(3)  # every byte before `stop` fed: nothing more asked until start() again


class Download:
    def __init__(self, send, offer, feed, cfg):
        self.reset(send, offer, feed, cfg)

    def reset(self, send, offer, feed, cfg):
        """Make ready to fetch `offer` (start() asks). A board keeps one Download for its
        life and resets it per file: its attribute table is taken at boot, not in a used
        heap, and stays at 22 attributes (a 23-slot table; one more needs 29)."""
        self._send = send  # send(cmd, payload)
        self.offer = offer  # QueryNextImageRsp: status, mfr, image_type, version, size
        self.discarded = False  # the CH discarded the image (R5), not a lost link
        self._feed = feed
        self._max = min(cfg["max_block"], 254)  # ZCL: an octet string's 0xFF length is invalid
        self._page = cfg["page_size"] // self._max * self._max  # whole blocks per page
        self._window = max(1, cfg["window"])
        self._spacing = cfg["spacing_ms"]
        self._timeout = cfg["block_timeout_ms"]
        self._retries_max = cfg["max_retries"]
        self._wait_cap = cfg["max_wait_s"] * 1000
        self.offset = 0  # next byte to feed
        self._stop = 0  # nothing at or beyond it is asked or fed (start() sets it)
        self._next = 0  # block mode: next offset to request
        self._page_end = -1  # page mode: end of the pages asked for (-1: none)
        self._gap_at = -1  # offset already re-requested because of a gap
        self._mbp = 0  # server's minimum block period (ms)
        self._due = 0  # ticks: next timeout / wait end / spaced request
        self._hold = False  # the next request waits for _due: WAIT_FOR_DATA, or spacing
        self._retries = 0
        self.state = RUNNING
        self.stats = [0, 0, 0]  # blocks fed, blocks ignored, re-requests

    def start(self, now, stop=0):
        """Ask for the file from `offset` up to `stop` (0: its end), where it pauses
        (PAUSED) until start() is called again."""
        size = self.offer[zcl_client.Q_SIZE]
        self._stop = min(stop, size) if stop else size
        self.state = RUNNING
        self._retries = 0
        self._ask(now)

    def _ask(self, now):
        # (Re)issue requests from self.offset.
        self._due = now + self._timeout
        if self._page and not self._mbp:
            self._page_end = self.offset
            self._next_page()
            return
        self._next = self.offset
        self._pump(now)

    def _next_page(self):
        # A page from the end of those asked (or from `offset`, had a server's block
        # overrun a page's end); nothing at or beyond `stop`.
        start = max(self._page_end, self.offset)
        self._page_end = min(start + self._page, self._stop)
        self._request(zcl_client.IMAGE_PAGE_REQ, start, self._page_end - start)

    def _pump(self, now):
        # Block mode: keep `window` requests in flight (one, spaced, under a min block period;
        # one until a block is fed: the server's block size is known only from its first
        # answer, and requests made at a larger step would ask some bytes twice).
        window = 1 if self._mbp or not self.stats[0] else self._window
        size = self._stop
        while self._next < size and self._next < self.offset + window * self._max:
            n = min(self._max, size - self._next)
            self._request(zcl_client.IMAGE_BLOCK_REQ, self._next, n)
            self._next += n

    def _request(self, cmd, offset, length):
        _st, mfr, itype, ver, _size = self.offer
        if cmd == zcl_client.IMAGE_PAGE_REQ:
            spacing = max(self._spacing, self._mbp)
            # a page shorter than a block (a file's head) asks blocks no longer than itself
            blk = min(self._max, length)
            p = zcl_client.encode_image_page_req(mfr, itype, ver, offset, blk, length, spacing)
        else:
            p = zcl_client.encode_image_block_req(mfr, itype, ver, offset, length)
        self._send(cmd, p)

    def on_block(self, rsp, now):
        """An Image Block Response from the CH: feed it if it is the next byte range."""
        status, mfr, itype, ver, off, data, current, asked, mbp = rsp  # ImageBlockRsp
        if status == zcl_client.WAIT_FOR_DATA:
            return self._wait(current, asked, mbp, now)
        if status != zcl_client.SUCCESS:
            self.state = ABANDONED  # ABORT (R5) or any other refusal
            self.discarded = status in (zcl_client.ABORT, zcl_client.NO_IMAGE_AVAILABLE)
            return
        o = self.offer
        n = len(data)
        if (
            mfr != o[zcl_client.Q_MFR]
            or itype != o[zcl_client.Q_TYPE]
            or ver != o[zcl_client.Q_VERSION]
        ):
            self.stats[1] += 1
            return
        if self.offset >= self._stop:  # paused: nothing is fed before start() again
            self.stats[1] += 1
            return
        if off != self.offset or n == 0 or n > self._max or self.offset + n > o[zcl_client.Q_SIZE]:
            self.stats[1] += 1
            if off > self.offset and self._gap_at != self.offset:
                self._gap_at = self.offset  # lost block: ask again once per gap
                self.stats[2] += 1
                self._ask(now)
            return
        if not self._page and n < self._max and self.offset + n < self._stop:
            self._max = n  # the server's blocks are smaller: ask for what it sends,
            self._next = self.offset + n  # from the end of this one
        if self.offset + n > self._stop:  # a server that fills the block past a page's end:
            n = self._stop - self.offset  # nothing beyond the pause is fed (asked again after)
            data = data[:n]
        self._feed(data)
        self.offset += n
        self.stats[0] += 1
        self._retries = 0
        self._progress(now)

    def _progress(self, now):
        if self.offset >= self.offer[zcl_client.Q_SIZE]:
            self.state = DONE
            self._feed = None  # every byte fed: let the caller's sink (its verifier) go
        elif self.offset >= self._stop:
            self.state = PAUSED
            self._due = now  # the caller's poll() settles it at once
        elif self._mbp:
            self._hold = True  # next request after the minimum block period
            self._due = now + self._mbp
        elif self._page_end >= 0:
            self._due = now + self._timeout
            # the next page is asked while half a page is still to come, so the line does
            # not idle a round trip between pages; the CH serves page requests in order,
            # and one that does not start where the last one ended restarts its stream
            if self._page_end < self._stop and self._page_end - self.offset <= self._page >> 1:
                self._next_page()
        else:
            self._due = now + self._timeout
            self._pump(now)

    def _wait(self, current, asked, mbp, now):
        # WAIT_FOR_DATA: ask again at the server's request time (its clock), then no
        # faster than its minimum block period
        wait_ms = max(0, asked - current) * 1000 + mbp
        self._mbp = mbp
        self._hold = True
        self._due = now + min(wait_ms, self._wait_cap)

    def poll(self, now):
        """Timers: end of a WAIT_FOR_DATA, spaced requests, silence. Returns the state."""
        if self.state != RUNNING or ticks_diff(now, self._due) < 0:
            return self.state
        if self._hold:
            self._hold = False
            self._ask(now)
        else:
            self._retries += 1
            self.stats[2] += 1
            if self._retries > self._retries_max:
                self.state = ABANDONED
            else:
                self._ask(now)
        return self.state

    def no_pages(self, now):
        """The CH does not do Image Page Requests: fall back to windowed block requests."""
        self._page = 0
        self._page_end = -1
        self._ask(now)

    def due(self):
        return self._due
