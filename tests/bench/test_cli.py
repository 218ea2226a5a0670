import pytest

from bench.cli import main


def test_list_shows_every_registry(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("cgcnn", "distance", "multi_edge", "lattice", "matbench_jdft2d", "matbench_mp_is_metal",
                 "perovskites_cdvae"):
        assert name in out


@pytest.mark.parametrize("flag,bad,known", [("--architectures", "gcn9000", "cgcnn"),
                                            ("--variants", "knn", "multi_edge"),
                                            ("--tasks", "matbench_nope", "matbench_jdft2d")])
def test_unknown_names_fail_listing_the_known_ones(capsys, flag, bad, known):
    assert main(["ablation", flag, bad]) == 2
    err = capsys.readouterr().err
    assert bad in err and known in err


def test_unknown_profile_is_a_clear_error(capsys):
    assert main(["ablation", "--profile", "nope"]) == 2
    assert "unknown profile 'nope'" in capsys.readouterr().err


def test_plugin_that_does_not_import_is_named(capsys):
    assert main(["list", "--plugin", "no_such_module_xyz"]) == 2
    assert "no_such_module_xyz" in capsys.readouterr().err
