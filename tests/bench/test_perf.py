"""``bench perf`` on real jdft2d graphs: what it writes, never how fast it was."""
import pandas as pd

import architectures
from bench.perf import run_perf


def test_perf_writes_one_row_per_pair_and_reports_failures_per_row(tmp_path, capsys):
    frame = run_perf(["cgcnn", "no_such_arch"], ["distance"], n_structures=8, batch_size=4, passes=1,
                     out_dir=tmp_path)
    csv = pd.read_csv(tmp_path / "cpu-1thread.csv")
    assert list(csv.architecture) == ["cgcnn", "no_such_arch"] and len(frame) == 2
    ok, failed = csv.iloc[0], csv.iloc[1]
    assert ok.n_params == architectures.count_parameters(architectures.create("cgcnn", out_dim=1))
    assert ok.n_structures == 8 and ok.threads == 1 and ok.device == "cpu"
    assert ok.train_structures_per_s > 0 and ok.predict_structures_per_s > 0
    assert ok.collate_ms_per_batch > 0 and 0 < ok.data_path_percent < 100  # collation is inside the step
    assert 0 < ok.lazy_data_path_percent < 100
    assert "no_such_arch" in failed.error and "cgcnn" in failed.error  # the unknown name lists the choices
    md = (tmp_path / "cpu-1thread.md").read_text()
    assert "first 8 structures, batch 4, 1 timed passes" in md and "| cgcnn | distance |" in md
    assert "ERROR" in capsys.readouterr().out
