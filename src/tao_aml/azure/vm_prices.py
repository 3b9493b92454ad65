"""What each VM size this project names costs an hour: one table, with where its figures come from and when.

Every figure is Azure's list (retail) price in USD per VM-hour for a Linux VM in one region, pay-as-you-go
and spot, as the Azure Retail Prices API publishes it (https://prices.azure.com/api/retail/prices,
priceType Consumption). This machine cannot call that API, so the figures were read from SkyPilot's copy
of it: catalogs/v6/azure/vms.csv at commit 098741e of skypilot-org/skypilot-catalog, written by SkyPilot's
sky/catalog/data_fetchers/fetch_azure.py from that API (Linux products only; " Spot" meters as SpotPrice).
The catalog's own fetch date is not in the file; READ_ON is when the figures were copied here.

Azure ML bills compute clusters, serverless jobs and managed online endpoints by the VMs they run
(infracost PR #2902: the cluster resources "use the same pricing as Azure VMs"). Storage, the container
registry, network and reserved or savings-plan discounts are not in this table. A figure that could not
be sourced is None and is printed as "unknown".
"""

from __future__ import annotations

from dataclasses import dataclass

REGION = "eastus"
SOURCE = ("https://github.com/skypilot-org/skypilot-catalog/blob/098741e70562f65d7af1cceb81e33b284f742604/"
          "catalogs/v6/azure/vms.csv")
ORIGIN = "Azure Retail Prices API (prices.azure.com), Linux"
READ_ON = "2026-12-06"
HOURS_PER_MONTH = 730  # Azure's pricing calculator's month


@dataclass(frozen=True)
class Price:
    """USD per VM-hour; None where the source gives no usable figure."""

    pay_as_you_go: float | None
    spot: float | None


# Rows with Region eastus. For the H100 sizes the catalog repeats the pay-as-you-go figure as SpotPrice
# (SkyPilot fills prices the API lacked for H100s), so their spot price is left unknown.
PRICES: dict[str, Price] = {
    "Standard_D4s_v3": Price(0.192, 0.02112),  # compute/cpu-cluster.yml, serverless CPU default
    "Standard_NC4as_T4_v3": Price(0.526, 0.062699),  # tao-aml deploy's default instance type
    "Standard_NC8as_T4_v3": Price(0.752, 0.089638),
    "Standard_NC16as_T4_v3": Price(1.204, 0.143517),
    "Standard_NC64as_T4_v3": Price(4.352, 0.518758),
    "Standard_NC24ads_A100_v4": Price(3.673, 0.444433),  # compute/gpu-cluster.yml, serverless GPU default
    "Standard_NC48ads_A100_v4": Price(7.346, 0.888866),
    "Standard_NC96ads_A100_v4": Price(14.692, 1.777732),
    "Standard_ND96asr_v4": Price(27.197, 2.99167),
    "Standard_ND96amsr_A100_v4": Price(32.77, 3.6047),
    "Standard_NC40ads_H100_v5": Price(6.98, None),
    "Standard_NC80adis_H100_v5": Price(13.96, None),
    "Standard_ND96isr_H100_v5": Price(98.32, None),
    "Standard_NV36ads_A10_v5": Price(3.2, 0.8),
    "Standard_NV72ads_A10_v5": Price(6.52, 1.63),
}


def hourly(size: str | None, spot: bool = False) -> float | None:
    """USD per VM-hour of `size` (spot or pay-as-you-go), or None when it is not known."""
    price = PRICES.get(size or "")
    if price is None:
        return None
    return price.spot if spot else price.pay_as_you_go


def source_note(spot: bool = False) -> str:
    """Which prices, and where they come from, for every printout that uses them."""
    kind = "spot" if spot else "pay-as-you-go"
    return (f"{kind} list prices in USD, {ORIGIN}, region {REGION}, read {READ_ON} from {SOURCE} "
            "(src/tao_aml/azure/vm_prices.py)")


def usd(amount: float | None) -> str:
    return "unknown" if amount is None else f"${amount:,.2f}"
