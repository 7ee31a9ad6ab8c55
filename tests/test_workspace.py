from autograder.workspace import sync_workspace


def test_workspace_never_overwrites_a_students_notebook(tmp_path):
    release, work = tmp_path / "release", tmp_path / "work"
    (release / "course").mkdir(parents=True)
    (release / "01.ipynb").write_text("released v1")
    (release / "course" / "checks.py").write_text("v1")
    sync_workspace(release, work)
    assert (work / "01.ipynb").read_text() == "released v1"

    (work / "01.ipynb").write_text("student's work")
    (release / "01.ipynb").write_text("released v2")
    (release / "02.ipynb").write_text("new notebook")
    (release / "course" / "checks.py").write_text("v2")
    report = sync_workspace(release, work)

    assert (work / "01.ipynb").read_text() == "student's work"
    assert (work / "02.ipynb").read_text() == "new notebook"
    assert (work / "course" / "checks.py").read_text() == "v2"
    assert report["kept"] == ["01.ipynb"] and "02.ipynb" in report["copied"]
