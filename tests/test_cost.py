"""What a run costs, before it runs: whole VMs billed for each step's hours, priced from one sourced table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from azure_recorder import FakeAzure, fake_azure, submit  # noqa: F401  (fixture)
from tao_aml.azure import endpoint, vm_prices, vm_sizes
from tao_aml.azure.submit import build_job
from tao_aml.cli import main
from tao_aml.repo import run_cost

REPO = Path(__file__).resolve().parents[1]
A100_X4 = "Standard_NC96ads_A100_v4"


def bills(*settings: str, serverless: bool = False) -> dict[str, run_cost.Bill]:
    steps = build_job("facenet", list(settings), serverless=serverless).steps
    return {step.name: run_cost.bill(step) for step in steps}


def test_each_step_is_billed_its_nodes_times_its_hours_at_its_sizes_price() -> None:
    steps = {step.name: step for step in build_job("facenet", []).steps}
    billed = bills()
    train, download = billed["train"], billed["download_wider"]
    assert train.size == "Standard_NC24ads_A100_v4" and download.size == vm_sizes.DEFAULT_CPU_SIZE
    assert train.vm_hours == pytest.approx(steps["train"].hours)
    assert train.gpu_hours == pytest.approx(steps["train"].gpu_hours, abs=0.001)  # 1 GPU per VM, all of it used
    assert train.usd == pytest.approx(train.vm_hours * 3.673)
    # CPU steps are billed too, at the CPU cluster's size; they hold no GPU.
    assert download.gpu_hours == 0 and download.usd == pytest.approx(download.vm_hours * 0.192) and download.usd > 0


def test_a_one_gpu_step_on_a_four_gpu_serverless_vm_pays_for_four() -> None:
    used = {step.name: step.gpu_hours for step in
            build_job("facenet", [f"gpu_instance_type={A100_X4}"], serverless=True).steps}
    billed = bills(f"gpu_instance_type={A100_X4}", serverless=True)
    evaluate = billed["evaluate_trained"]
    assert evaluate.size == A100_X4
    assert evaluate.gpu_hours == pytest.approx(4 * evaluate.vm_hours)
    assert evaluate.gpu_hours == pytest.approx(4 * used["evaluate_trained"], abs=4 * 0.0005)  # used: 3 decimals
    assert evaluate.usd == pytest.approx(evaluate.vm_hours * 14.692)


def test_every_node_of_a_distributed_step_is_billed() -> None:
    one, two = bills(serverless=True)["train"], bills("nodes=2", serverless=True)["train"]
    hours = {step.name: step.hours for step in build_job("facenet", ["nodes=2"], serverless=True).steps}
    assert two.vm_hours == pytest.approx(2 * hours["train"])
    assert two.vm_hours > one.vm_hours  # the work is shared out at a loss, never for free


def test_spot_runs_are_priced_at_spot_prices() -> None:
    spot = bills("spot=true", serverless=True)["train"]
    assert spot.usd == pytest.approx(spot.vm_hours * vm_prices.PRICES["Standard_NC24ads_A100_v4"].spot)


def test_the_table_prices_every_size_the_project_names_and_says_where_from() -> None:
    named = {*vm_sizes.GPU_SIZES, vm_sizes.DEFAULT_CPU_SIZE, vm_sizes.DEFAULT_GPU_SIZE, endpoint.DEFAULT_INSTANCE_TYPE}
    named |= {yaml.safe_load(path.read_text())["size"] for path in (REPO / "compute").glob("*.yml")}
    assert named <= set(vm_prices.PRICES)
    assert all(price.pay_as_you_go for price in vm_prices.PRICES.values())
    assert re.fullmatch(r"https://github\.com/skypilot-org/skypilot-catalog/blob/[0-9a-f]{40}/catalogs/v6/azure/vms\.csv",
                        vm_prices.SOURCE)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", vm_prices.READ_ON) and vm_prices.REGION == "eastus"


def test_dry_run_prints_billed_hours_and_the_price_as_an_estimate_with_its_source(
        tmp_path: Path, fake_azure: FakeAzure, capsys) -> None:  # noqa: F811
    assert submit(REPO, tmp_path, "facenet", "--dry-run") == 0
    out = capsys.readouterr().out
    billed = bills()
    assert "estimated cost (an estimate: guessed hours x list prices, not a quote):" in out
    assert re.search(r"step +VM size +VM-h billed +GPU-h billed +price\n", out)
    train = billed["train"]
    assert re.search(rf"  train +Standard_NC24ads_A100_v4 +{train.vm_hours:.2f} +{train.gpu_hours:.2f} "
                     rf"+\${train.usd:.2f}\n", out)
    assert re.search(r"  download_wider +Standard_D4s_v3 +\d+\.\d\d +0\.00 +\$\d+\.\d\d\n", out)
    total = sum(b.usd for b in billed.values())
    assert re.search(rf"  total +{sum(b.vm_hours for b in billed.values()):.2f} +"
                     rf"{sum(b.gpu_hours for b in billed.values()):.2f} +\${total:,.2f}\n", out)
    assert "billed: whole VMs, nodes x hours; a step on 1 GPU of a 4-GPU VM is billed 4 GPU-hours an hour" in out
    assert f"prices: pay-as-you-go list prices in USD, {vm_prices.ORIGIN}, region eastus, read {vm_prices.READ_ON} " \
           f"from {vm_prices.SOURCE}" in out
    assert "+ gpu-cluster keeps each node up 1800 s after its last step (idle_time_before_scale_down in " \
           "compute/gpu-cluster.yml): up to 0.50 VM-h, $1.84 more per node" in out


def test_a_cluster_of_the_users_own_is_priced_unknown_not_guessed(tmp_path: Path, fake_azure: FakeAzure,  # noqa: F811
                                                                   capsys) -> None:
    assert submit(REPO, tmp_path, "facenet", "--dry-run", "--gpu-compute", "my-gpus") == 0
    out = capsys.readouterr().out
    assert re.search(r"  train +unknown +\d+\.\d\d +unknown +unknown\n", out)
    assert re.search(r"  total +\d+\.\d\d +unknown +unknown\n", out)
    assert "unknown: my-gpus is no cluster of compute/*.yml, so its VM size is not known offline" in out


def test_a_size_without_a_sourced_spot_price_is_unknown(tmp_path: Path, fake_azure: FakeAzure,  # noqa: F811
                                                        capsys) -> None:
    assert submit(REPO, tmp_path, "facenet", "--dry-run", "--serverless", "--set", "spot=true",
                  "--set", "gpu_instance_type=Standard_NC40ads_H100_v5") == 0
    out = capsys.readouterr().out
    assert "unknown: src/tao_aml/azure/vm_prices.py has no spot price for Standard_NC40ads_H100_v5" in out
    assert "prices: spot list prices in USD" in out


def test_deploy_dry_run_prints_the_endpoints_monthly_price(tmp_path: Path, capsys) -> None:
    assert main(["deploy", "--model", "cars-triton:1", "--endpoint", "tao-cars", "--dry-run", "--instance-count", "2",
                 "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"estimated price: ${2 * 730 * 0.526:,.2f} a month (2 x 730 h of Standard_NC4as_T4_v3 at $0.526/h, billed " \
           "while the deployment exists, requests or not; an estimate from pay-as-you-go list prices" in out
    assert f"read {vm_prices.READ_ON} from {vm_prices.SOURCE}" in out
