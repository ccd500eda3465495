import sys
from pathlib import Path

# tests import helpers such as tests/mpy.py by module name
sys.path.insert(0, str(Path(__file__).parent))
