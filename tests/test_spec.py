import pytest

from goalcover_hf.spec import GoalSpec, SpecError


def write(tmp_path, text, name="goal.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_round_trip(tmp_path, spec):
    path = spec.save(tmp_path / "goal.yaml")
    loaded = GoalSpec.load(path)
    assert loaded == spec
    assert loaded.content_hash() == spec.content_hash()


def test_save_never_overwrites_without_asking(tmp_path, spec):
    path = write(tmp_path, "goal: mine\nsubgoals: []\n")
    with pytest.raises(FileExistsError, match="overwrite"):
        spec.save(path)
    assert path.read_text() == "goal: mine\nsubgoals: []\n"
    spec.save(path, overwrite=True)
    assert GoalSpec.load(path) == spec


def test_hash_ignores_meta_but_not_subgoals(spec):
    with_meta = spec.model_copy(update={"meta": {"model": "x"}})
    assert with_meta.content_hash() == spec.content_hash()
    changed = spec.model_copy(deep=True)
    changed.subgoals[0].description = "Something else entirely."
    assert changed.content_hash() != spec.content_hash()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", "empty"),
        ("goal: [unclosed", "not valid YAML"),
        ("- a\n- b\n", "expected a mapping"),
        ("goal: ''\nsubgoals: [{id: a, name: A, description: d}]\n", "goal: Value error, must not be empty"),
        ("goal: g\nsubgoals: []\n", "at least one subgoal"),
        ("goal: g\nsubgoals: [{id: a, name: A, description: d}, {id: a, name: B, description: e}]\n", "duplicate id 'a'"),
        ("goal: g\nsubgoals: [{id: Bad Id, name: A, description: d}]\n", "subgoals.0.id"),
        ("goal: g\nsubgoals: [{id: a, name: A, description: '  '}]\n", "subgoals.0.description"),
        ("goal: g\nsubgoals: [{id: a, name: A, description: d, colour: red}]\n", "subgoals.0.colour: unknown key"),
        ("goal: g\nsubgoals: [{id: a, name: A}]\n", "subgoals.0.description: Field required"),
    ],
)
def test_invalid_specs_name_file_and_field(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as err:
        GoalSpec.load(path)
    assert str(path) in str(err.value)
    assert expected in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(SpecError, match="not found"):
        GoalSpec.load(tmp_path / "nope.yaml")


def test_shipped_example_spec_loads():
    from pathlib import Path

    spec = GoalSpec.load(Path(__file__).parents[1] / "examples" / "medication_qa" / "goal.yaml")
    assert [s.id for s in spec.subgoals] == ["answers_question", "states_dose", "warns_risks", "refers_to_professional"]
