"""Configuration: defaults + recipe + command-line overrides, with typed, named errors."""
import os
import subprocess
import sys

import pytest

from src.config import ConfigError, load_config, run_cli, save_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_entry_point_sees_shared_keys_and_its_own_section():
    train = load_config("train", [])
    export = load_config("export", [])
    assert (train.model, train.batch_size, export.batch_size) == ("ghostnet_100", 128, 1)
    assert "epochs" in train and "epochs" not in export and "file_format" in export


def test_overrides_are_typed_from_the_defaults():
    cfg = load_config("train", ["--lr", "0.1", "--model=repghostnet_050", "--ema", "false", "--nesterov",
                                "--epochs", "3", "--mean", "[0.5, 0.5, 0.5]", "--auto_augment", "randaug"])
    assert cfg.lr == 0.1 and cfg.model == "repghostnet_050" and cfg.ema is False and cfg.nesterov is True
    assert cfg.epochs == 3 and cfg.mean == [0.5, 0.5, 0.5] and cfg.auto_augment == "randaug"
    assert isinstance(load_config("train", ["--lr", "1"]).lr, float)
    # a list key also takes comma-separated items or a single one, as the docs write them
    assert load_config("train", ["--mean", "0.5,0.4, 0.3"]).mean == [0.5, 0.4, 0.3]
    assert load_config("export", ["--quant_keep_float", "depthwise"]).quant_keep_float == ["depthwise"]
    assert load_config("export", ["--quant_keep_float", "first_conv,classifier"]).quant_keep_float == [
        "first_conv", "classifier"]


@pytest.mark.parametrize("argv,message", [
    (["--lrr", "0.1"], "unknown config key 'lrr'; did you mean --lr?"),
    (["--weight_decy", "0"], "did you mean --weight_decay"),
    (["--lr", "fast"], "--lr expects float (default 0.4), got 'fast'"),
    (["--epochs", "1.5"], "--epochs expects int"),
    (["--ema", "maybe"], "--ema expects bool"),
    (["--file_format", "ONNX"], "unknown config key 'file_format'"),
    (["--config", "missing.yaml"], "config file not found: missing.yaml"),
    (["model"], "unexpected argument 'model'"),
    (["--epochs"], "--epochs needs a value"),
])
def test_bad_overrides_name_the_key(argv, message):
    with pytest.raises(ConfigError, match=message.replace("?", r"\?").replace("[", r"\[").replace("(", r"\(")
                       .replace(")", r"\)")):
        load_config("train", argv)


def test_recipe_overrides_defaults_and_cli_overrides_recipe(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: repghostnet_100\ntrain:\n  lr: 0.6\n  epochs: 300\nexport:\n  batch_size: 8\n")
    cfg = load_config("train", ["--config", str(recipe), "--epochs", "2"])
    assert (cfg.model, cfg.lr, cfg.epochs, cfg.config) == ("repghostnet_100", 0.6, 2, str(recipe))
    assert load_config("export", ["--config", str(recipe)]).batch_size == 8


def test_recipe_typos_and_types_are_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  lrate: 0.1\n")
    with pytest.raises(ConfigError, match="unknown config key 'lrate'"):
        load_config("train", ["--config", str(bad)])
    bad.write_text("train:\n  epochs: many\n")
    with pytest.raises(ConfigError, match="'epochs' expects int"):
        load_config("train", ["--config", str(bad)])


@pytest.mark.parametrize("recipe", sorted(os.listdir(os.path.join(ROOT, "configs"))))
def test_shipped_recipes_load_for_every_entry_point(recipe):
    for section in ("train", "eval", "export", "infer"):
        load_config(section, ["--config", os.path.join(ROOT, "configs", recipe)])


def test_saved_config_round_trips(tmp_path):
    cfg = load_config("train", ["--lr", "0.25"])
    path = tmp_path / "config.yaml"
    save_config(cfg, str(path), "train")
    assert load_config("train", ["--config", str(path)]).lr == 0.25


def test_cli_error_is_one_line_with_nonzero_exit():
    proc = subprocess.run([sys.executable, "train.py", "--lrr", "0.1"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: unknown config key 'lrr'; did you mean --lr?"
    assert "Traceback" not in proc.stderr


def test_help_lists_documented_keys():
    proc = subprocess.run([sys.executable, "export.py", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0
    assert "file_format: MINDIR" in proc.stdout and "dynamic_batch" in proc.stdout


def test_run_cli_prints_project_errors_but_keeps_the_traceback_of_bugs(capsys):
    def main_with_bug(cfg):
        return {}["missing"]  # a KeyError in our own code is a bug, not bad input

    def main_with_user_error(cfg):
        raise ValueError("a ValueError from inside a library is no excuse to hide the traceback")

    with pytest.raises(KeyError):
        run_cli(main_with_bug, "train", [])
    with pytest.raises(ValueError):
        run_cli(main_with_user_error, "train", [])
    assert run_cli(lambda cfg: load_config("train", ["--lrr", "1"]), "train", []) == 2
    assert capsys.readouterr().err == "error: unknown config key 'lrr'; did you mean --lr?\n"


def test_explicit_keys_are_those_set_by_a_recipe_or_the_command_line(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: repghostnet_100\neval:\n  batch_size: 8\n")
    cfg = load_config("eval", ["--config", str(recipe), "--image_size", "64"])
    assert cfg.explicit == {"model", "batch_size", "image_size"}


def test_several_config_files_layer_in_order_then_the_command_line(tmp_path):
    override = tmp_path / "override.yaml"
    override.write_text("num_classes: 4\ntrain:\n  epochs: 2\n  lr: 0.05\n")
    cfg = load_config("train", ["--config", "configs/quickstart.yaml", "--config", str(override), "--lr", "0.01"])
    assert (cfg.model, cfg.image_size, cfg.batch_size) == ("ghostnet_050", 32, 64)  # from the recipe
    assert (cfg.num_classes, cfg.epochs, cfg.lr) == (4, 2, 0.01)  # the later file, then the command line
    assert cfg.config == f"configs/quickstart.yaml, {override}"


def test_floats_in_exponent_notation_are_floats(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("train:\n  weight_decay: 1e-5\n  min_lr: 2E-6\n")
    cfg = load_config("train", ["--config", str(recipe), "--lr", "1e-3", "--warmup_lr", "-1e+1"])
    assert (cfg.weight_decay, cfg.min_lr, cfg.lr, cfg.warmup_lr) == (1e-5, 2e-6, 1e-3, -10.0)
    assert load_config("export", ["--verify_tolerance", "1e-4"]).verify_tolerance == 1e-4
    assert load_config("train", ["--model", "1e5"]).model == "1e5"  # a string key keeps what was written


@pytest.mark.parametrize("text,message", [
    ("export:\n  lr: 0.1\n", "'lr' under 'export:' is not a key of export.py (it belongs under 'train:')"),
    ("eval:\n  ema: true\n", "'ema' under 'eval:' is not a key of eval.py (it belongs under 'train:')"),
    ("infer:\n  topk: 3\n", "'topk' under 'infer:' is not a key of infer.py (unknown config key 'topk'; did you mean "
                            "--top_k?)"),
])
def test_a_key_under_the_wrong_section_is_an_error_in_every_entry_point(tmp_path, text, message):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(text)
    for section in ("train", "eval", "export", "infer"):
        with pytest.raises(ConfigError) as info:
            load_config(section, ["--config", str(recipe)])
        assert str(info.value) == f"{recipe}: {message}"
