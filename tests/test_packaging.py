"""The packed environment's contents and when it is rebuilt (the build itself runs in the cluster tier)."""

import pytest

from pipelines import packaging


def test_env_holds_the_runtime_requirements_but_not_pyspark():
    names = [r.split(">")[0].split("=")[0].lower() for r in packaging.env_requirements()]
    assert {"numpy", "pandas", "pyarrow", "scipy", "gensim", "jieba"} <= set(names) and "pyspark" not in names


def test_env_is_rebuilt_only_when_its_requirements_change(tmp_path, monkeypatch):
    built = []
    monkeypatch.setattr(packaging, "build_env", lambda dest: built.append(dest) or packaging.env_archive(dest))
    archive = packaging.env_archive(tmp_path)
    assert packaging.ensure_env(tmp_path) == archive and len(built) == 1  # missing
    archive.write_bytes(b"packed")
    packaging._stamp(archive).write_text(packaging._env_inputs())
    packaging.ensure_env(tmp_path)
    assert len(built) == 1  # current
    monkeypatch.setattr(packaging, "env_requirements", lambda: ["numpy>=3"])
    packaging.ensure_env(tmp_path)
    assert len(built) == 2  # requirements changed


def test_a_bad_destination_is_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit, match="^packaging: .*File exists"):
        packaging.main([str(tmp_path / "file")])
