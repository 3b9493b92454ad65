"""What every command group shares: exit codes, the error line, the workspace flags, argument types."""

from __future__ import annotations

import argparse
import sys

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_AZURE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a whole number of at least 1")
    return value


def add_workspace_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "workspace", "first of: these flags, --config, AZUREML_SUBSCRIPTION_ID / AZUREML_RESOURCE_GROUP / "
        "AZUREML_WORKSPACE_NAME, ./config.json",
    )
    group.add_argument("--config", help="config.json downloaded from Studio (workspace menu)")
    group.add_argument("--subscription", help="subscription id")
    group.add_argument("--resource-group", help="resource group of the workspace")
    group.add_argument("--workspace", help="workspace name")


