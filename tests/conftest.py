import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from fake_engine import FakeEngine  # noqa: E402
from tiny_model import build_tiny_model  # noqa: E402

from goalcover_hf.spec import GoalSpec  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory):
    """One goalcover cache for the session, so the embedded model is converted at most once. Set here, before any
    fixture of a wider scope than a test runs (a module's scorer), so none of them reaches the user's cache."""
    path = tmp_path_factory.mktemp("goalcover_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GOALCOVER_CACHE", str(path))
        yield path


@pytest.fixture(autouse=True)
def isolated_caches(tmp_path, monkeypatch, session_cache):
    """Every cache (goalcover's, datasets') goes to temporary folders: tests never touch the user's.

    Converted models are shared by the session; the pair cache is each test's own, so what one test's fake judge
    said is never another test's cache hit.
    """
    import datasets

    shared_models = session_cache / "models"
    shared_models.mkdir(exist_ok=True)
    own = tmp_path / "gc_cache"
    own.mkdir()
    (own / "models").symlink_to(shared_models, target_is_directory=True)
    monkeypatch.setenv("GOALCOVER_CACHE", str(own))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf_datasets"))
    yield


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    """Path of a tiny random chat model folder, built once per session."""
    return str(build_tiny_model(tmp_path_factory.mktemp("tiny_model")))


@pytest.fixture
def spec() -> GoalSpec:
    return GoalSpec(
        goal="A patient-facing assistant that answers medication questions",
        subgoals=[
            {"id": "states_dose", "name": "States a dose", "description": "The answer gives a dose with units.",
             "low": "No dose at all.", "high": "An exact dose with units and frequency."},
            {"id": "warns_side_effects", "name": "Warns about side effects",
             "description": "The answer names at least one side effect or risk."},
        ],
    )


@pytest.fixture(scope="session")
def llama_server():
    """llama-cpp-python's OpenAI-compatible server on 127.0.0.1, serving the embedded GGUF (one per session)."""
    pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python[server] is not installed: "
                        "pip install 'goalcover_hf[llamacpp]'")
    from servers import LlamaServer

    from goalcover_hf.models import embedded_gguf_path

    server = LlamaServer(str(embedded_gguf_path()), alias="SmolLM2-135M-Instruct-Q4_1", n_ctx=2048,
                         threads=1)  # llama.cpp's spinning threads crawl on a busy machine
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture
def proxy(llama_server):
    """A fault-injecting proxy in front of the session's server (fresh for each test)."""
    from servers import FaultProxy

    p = FaultProxy(llama_server.base_url)
    yield p
    p.close()


# ---- data files ------------------------------------------------------------------------------------------------------
MEDICATION_ROWS = [
    {"id": "r0", "question": "How much ibuprofen can an adult take?",
     "answer": "200 to 400 mg every 4 to 6 hours, at most 1,200 mg a day."},
    {"id": "r1", "question": "What is asthma?", "answer": "A long-term lung disease."},
    {"id": "r2", "question": "Can I take amoxicillin with food?", "answer": "Yes, with or without food."},
]


@pytest.fixture
def medication_rows() -> list[dict]:
    """Three medication Q&A rows (``id``, ``question``, ``answer``): one states a dose, two do not."""
    return [dict(row) for row in MEDICATION_ROWS]


@pytest.fixture
def write_rows(tmp_path, medication_rows):
    """``write_rows(rows=medication_rows, name="rows.jsonl") -> Path``: a JSON Lines data file in ``tmp_path``."""

    def write(rows: list[dict] | None = None, name: str = "rows.jsonl") -> Path:
        path = tmp_path / name
        rows = medication_rows if rows is None else rows
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        return path

    return write


# ---- engines ---------------------------------------------------------------------------------------------------------
@pytest.fixture
def make_fake_engine():
    """The :class:`fake_engine.FakeEngine` factory: ``make_fake_engine(probs=..., generate=..., fail_on=...)``."""
    return FakeEngine


@pytest.fixture
def fake_engine() -> FakeEngine:
    """A fake judge that scores every pair 3 and explains with ``"explains 3"``, recording every call."""
    return FakeEngine()


@pytest.fixture
def install_engine(monkeypatch):
    """``install_engine(engine) -> list``: every engine loaded by name from now on (as the command line and forked
    map workers load theirs) is ``engine``; the list collects the ``(model, engine name)`` each load asked for.

    Prefer ``Scorer(spec, engine=fake)``; this is for code that builds its own scorer or engine.
    """
    import goalcover_hf.engines as engines

    def install(engine) -> list[tuple[str, str]]:
        asked = []

        def load(model="embedded", engine_name="transformers", *args, **kwargs):
            asked.append((model, engine_name))
            return engine

        monkeypatch.setattr(engines, "get_engine", load)
        monkeypatch.setattr(engines, "get_counter", lambda *a, **k: engine.token_counter())
        return asked

    return install
