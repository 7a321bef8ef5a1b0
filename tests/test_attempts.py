"""Raw records of an earlier attempt are moved aside, never overwritten."""

from __future__ import annotations

import json

from faro.serving.attempts import archive_attempt


def test_nothing_to_keep(tmp_path):
    assert archive_attempt(tmp_path, ["requests.csv"]) is None
    assert not (tmp_path / "attempts").exists()


def test_moves_present_files_to_numbered_folders(tmp_path):
    (tmp_path / "requests.csv").write_text("a\n1\n")
    (tmp_path / "serve_logs").mkdir()
    (tmp_path / "serve_logs" / "x.log").write_text("log")
    first = archive_attempt(tmp_path, ["requests.csv", "serve_logs", "autoscaler.jsonl"])
    assert first == tmp_path / "attempts" / "1"
    assert (first / "requests.csv").read_text() == "a\n1\n" and (first / "serve_logs" / "x.log").is_file()
    assert not (tmp_path / "requests.csv").exists() and not (tmp_path / "serve_logs").exists()
    assert json.loads((first / "moved.json").read_text())["files"] == ["requests.csv", "serve_logs"]
    (tmp_path / "requests.csv").write_text("a\n2\n")
    second = archive_attempt(tmp_path, ["requests.csv"])
    assert second == tmp_path / "attempts" / "2" and (second / "requests.csv").read_text() == "a\n2\n"
    assert (first / "requests.csv").read_text() == "a\n1\n"
