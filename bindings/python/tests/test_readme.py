"""The README's Python example, run as written against a real office."""

import pathlib

from conftest import ROOT


def readme_example():
    text = (ROOT / "README.md").read_text()
    start = text.index("```python\n") + len("```python\n")
    return text[start : text.index("```", start)]


def test_the_readme_example_runs_as_written(office, tmp_path, capsys):
    token = office.open_account("erin", 5_000)
    code = readme_example()
    exec(
        compile(code, "README.md", "exec"),
        {"office_url": office.url, "owner_token": token, "wallet_dir": str(tmp_path / "erin")},
    )
    printed = capsys.readouterr().out
    assert "enrolled " in printed and "refused: wrong PIN" in printed, printed
    assert office.owner_balance_minor(token) == 3_000
