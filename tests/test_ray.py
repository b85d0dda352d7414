"""Ray Data scale-out on a real local Ray: the Scorer as a callable class in an actor pool, results as datasets.map."""

import pyarrow as pa
import pytest
from datasets import Dataset

from goalcover_hf import Scorer

ROWS = {"question": ["How much ibuprofen?", "What is asthma?", "Empty?", "How often?", "With food?"],
        "answer": ["200 mg every 6 hours.", "A lung disease.", "", "Twice a day.", "Yes, may cause nausea."]}


def same(a: Dataset, b: Dataset) -> None:
    assert a.column_names == b.column_names and len(a) == len(b)
    for col in a.column_names:
        if col.endswith("_expected"):  # floats from separate processes: equal up to float noise
            assert all((x is None and y is None) or abs(x - y) < 1e-5 for x, y in zip(a[col], b[col])), col
        else:
            assert a[col] == b[col], col


def test_a_pyarrow_batch_gets_the_same_columns_appended(tiny_model, spec):
    ds = Dataset.from_dict(ROWS)
    scorer = Scorer(spec, tiny_model, mode="logprobs", explain="none")
    as_dict = ds.map(scorer, batched=True, batch_size=5, features=scorer.features(ds.features))
    table = scorer(pa.Table.from_pydict(ROWS))
    assert table.column_names == as_dict.column_names
    assert table.schema.field("gc_states_dose_score").type == pa.int8()
    same(Dataset(table), as_dict)


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    ray = pytest.importorskip("ray", reason="ray is not installed: pip install 'goalcover_hf[ray]'")
    pytest.importorskip("ray.data")
    cache = tmp_path_factory.mktemp("ray_goalcover_cache")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"GOALCOVER_CACHE": str(cache), "HF_HUB_OFFLINE": "1",
                                       "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}})
    yield ray
    ray.shutdown()


def test_ray_actor_pool_matches_datasets_map(local_ray, tiny_model, spec):
    ray = local_ray
    ds = Dataset.from_dict(ROWS)
    scorer = Scorer(spec, tiny_model, mode="logprobs", explain="none")
    expected = ds.map(scorer, batched=True, batch_size=2, features=scorer.features(ds.features))

    ray.data.DataContext.get_current().execution_options.preserve_order = True
    # A datasets table arrives as one block: split it (materialized first, so the split does not wait for CPUs the
    # actors hold) for a pool of two actors, each building its own scorer and engine.
    scored = ray.data.from_huggingface(ds).repartition(3).materialize().map_batches(
        Scorer, fn_constructor_kwargs=scorer.init_kwargs(), batch_format="pyarrow", batch_size=2,
        compute=ray.data.ActorPoolStrategy(size=2))
    back = Dataset(pa.concat_tables(ray.get(scored.to_arrow_refs()))).cast(scorer.features(ds.features))
    same(back, expected)
    assert back["gc_states_dose_error"][2] is not None and back["gc_states_dose_score"][2] is None  # empty answer
    assert all(s in (1, 2, 3, 4, 5) for k, s in enumerate(back["gc_states_dose_score"]) if k != 2)
