"""The README is the user's door: its table of diagnostic codes must match the validator's."""
import re
from pathlib import Path

from statemill.engine.diagnostics import CODES

README = Path(__file__).parents[1] / "README.md"


def test_readme_lists_every_diagnostic_code_with_its_meaning():
    block = README.read_text(encoding="utf-8").split("<!-- codes:start -->")[1].split("<!-- codes:end -->")[0]
    rows = dict(re.findall(r"^\| (SM\d{3}) \| (.+?) \|$", block, flags=re.M))
    assert rows == CODES
