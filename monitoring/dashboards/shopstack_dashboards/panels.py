"""The pieces every dashboard is made of: its frame (datasource variable, tags, links), the
variables, and panels that cannot be built without a title, a description and a unit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard, prometheus, stat, statetimeline, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

TAG = "shopstack"
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
# Probes and scrapes are not traffic: they stay out of every SLI and golden signal.
NOT_PROBES = 'route!~"/healthz|/readyz|/metrics"'

Panel = timeseries.Panel | stat.Panel | statetimeline.Panel


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


def share(part: str, whole: str, *, by: str) -> str:
    """The share of ``whole``'s rate that ``part`` (a narrower selector of the same counter)
    makes up, per ``by``; 0, not nothing, where ``part`` has no series (no 5xx yet)."""

    def rate(selector: str) -> str:
        return f"sum by ({by}) (rate({selector}[$__rate_interval]))"

    return f"({rate(part)} or 0 * {rate(whole)}) / {rate(whole)}"


def new_dashboard(
    *, uid: str, title: str, description: str, tags: Sequence[str]
) -> dashboard.Dashboard:
    """A dashboard with the Prometheus datasource as its first variable, the shared tag, and a
    menu linking to every other shopstack dashboard (keeping the time range and variables)."""
    return (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG, *tags])
        .editable()
        .timezone("browser")
        .time("now-6h", "now")
        .refresh("1m")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .with_variable(
            dashboard.DatasourceVariable("datasource")
            .label("Data source")
            .description("The Prometheus that scrapes shopstack.")
            .type("prometheus")
        )
        .link(
            dashboard.DashboardLink("shopstack dashboards")
            .type(model.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
    )


def query_variable(
    name: str, *, label: str, description: str, query: str
) -> dashboard.QueryVariable:
    """A multi-select variable of label values, refreshed with the time range; "All" matches
    any value (``.+``), so queries keep working when a new value appears."""
    return (
        dashboard.QueryVariable(name)
        .label(label)
        .description(description)
        .datasource(DATASOURCE)
        .query(query)
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".+")
    )


def service_variable() -> dashboard.QueryVariable:
    return query_variable(
        "job",
        label="Service",
        description="The services (Prometheus job) to show.",
        query="label_values(shopstack_http_requests_total, job)",
    )


def dashboard_link(title: str, uid: str, *, keep_variables: bool = True) -> dashboard.DashboardLink:
    variables = "&${__all_variables}" if keep_variables else ""
    return (
        dashboard.DashboardLink(title)
        .type(model.DashboardLinkType.LINK)
        .url(f"/d/{uid}?${{__url_time_range}}{variables}")
    )


def _targets(
    queries: Sequence[Query], *, instant: bool = False
) -> list[cogbuilder.Builder[cogvariants.Dataquery]]:
    targets: list[cogbuilder.Builder[cogvariants.Dataquery]] = []
    for index, query in enumerate(queries):
        target = prometheus.Dataquery().expr(query.expr).ref_id(chr(ord("A") + index))
        if query.legend:
            target = target.legend_format(query.legend)
        targets.append(target.instant() if instant else target.range())
    return targets


def graph(
    title: str,
    *,
    description: str,
    unit: str,
    queries: Sequence[Query],
    stacked: bool = False,
    width: int = 12,
    links: Sequence[dashboard.DashboardLink] = (),
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(DATASOURCE)
        .targets(_targets(queries))
        .span(width)
        .height(8)
        .fill_opacity(10)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["lastNotNull", "max"])
        )
    )
    if stacked:
        panel = panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    if links:
        panel = panel.links(list(links))
    return panel


def single_stat(
    title: str,
    *,
    description: str,
    unit: str,
    queries: Sequence[Query],
    thresholds: Sequence[tuple[float | None, str]],
    decimals: int = 2,
    width: int = 6,
    links: Sequence[dashboard.DashboardLink] = (),
) -> stat.Panel:
    """A current value, coloured by ``thresholds``: (lower bound, colour) pairs, the first
    bound None."""
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .decimals(decimals)
        .datasource(DATASOURCE)
        .targets(_targets(queries, instant=True))
        .span(width)
        .height(5)
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
        .thresholds(
            dashboard.ThresholdsConfig()
            .mode(model.ThresholdsMode.ABSOLUTE)
            .steps([model.Threshold(value=bound, color=colour) for bound, colour in thresholds])
        )
    )
    if links:
        panel = panel.links(list(links))
    return panel


def states(
    title: str,
    *,
    description: str,
    queries: Sequence[Query],
    names: dict[int, tuple[str, str]],
    width: int = 12,
) -> statetimeline.Panel:
    """A state over time: each value shown by its name and colour from ``names``."""
    return (
        statetimeline.Panel()
        .title(title)
        .description(description)
        .unit("none")
        .datasource(DATASOURCE)
        .targets(_targets(queries))
        .span(width)
        .height(6)
        .mappings(
            [
                model.ValueMap(
                    options={
                        str(value): model.ValueMappingResult(text=text, color=colour, index=index)
                        for index, (value, (text, colour)) in enumerate(sorted(names.items()))
                    }
                )
            ]
        )
    )


def up_or_down(
    title: str, *, description: str, queries: Sequence[Query], width: int = 6
) -> stat.Panel:
    """1 is up, 0 is down: named and coloured."""
    return single_stat(
        title,
        description=description,
        unit="none",
        queries=queries,
        thresholds=[(None, "red"), (1, "green")],
        decimals=0,
        width=width,
    ).mappings(
        [
            model.ValueMap(
                options={
                    "0": model.ValueMappingResult(text="down", color="red", index=0),
                    "1": model.ValueMappingResult(text="up", color="green", index=1),
                }
            )
        ]
    )
