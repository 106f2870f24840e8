"""A minimal agentrail project: one ``StatefulAgent`` whose agent code is the project's ``agent/`` folder.

The hot-reload test and benchmark write it to a folder of their own and edit it while ``agentrail
local`` serves it: the tool's answer (code), or the agent the app names (a template change).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["scaffold_app", "scaffold_tool", "write_scaffold"]

_APP = """\
import aws_cdk as cdk
from agentrail_constructs import AgentFunctionOptions, StatefulAgent

app = cdk.App()
stack = cdk.Stack(app, "Scaffold")
cdk.Tags.of(stack).add("agentrail:pattern", "stateful")
StatefulAgent(
    stack,
    "Shop",
    function_options=AgentFunctionOptions(model="local", agent_code="agent", agent_definition="AGENT_DEFINITION"),
)
app.synth()
"""
_TOOL = """\
from agentrail_runtime import AgentDefinition, tool


@tool(local_patterns=[r"price of (?P<item>[a-z]+)"])
def price(item: str) -> dict:
    \"\"\"The price of an item.\"\"\"
    return {"item": item, "price": "PRICE"}


@tool(local_patterns=[r"price of (?P<item>[a-z]+)"])
def sale_price(item: str) -> dict:
    \"\"\"The price of an item during the sale.\"\"\"
    return {"item": item, "price": "PRICE, on sale"}


agent = AgentDefinition(name="shop", system_prompt="You sell things.", tools=(price,))
sale_agent = AgentDefinition(name="shop-sale", system_prompt="You sell things cheaper.", tools=(sale_price,))
"""


def scaffold_app(*, agent_definition: str = "shop:agent") -> str:
    """``app.py``: the agent named by ``agent_definition`` (``shop:agent``, or ``shop:sale_agent`` which answers "on sale")."""
    return _APP.replace("AGENT_DEFINITION", agent_definition)


def scaffold_tool(price: str) -> str:
    """``agent/shop.py``: its ``price`` tool answers ``price`` for any item."""
    return _TOOL.replace("PRICE", price)


def write_scaffold(project: Path, *, price: str, feature_flags: Mapping[str, Any], agent_definition: str = "shop:agent") -> Path:
    """Write the project to ``project`` (created if need be), with ``feature_flags`` as ``cdk.json``'s context."""
    (project / "agent").mkdir(parents=True, exist_ok=True)
    (project / "agent" / "shop.py").write_text(scaffold_tool(price))
    (project / "app.py").write_text(scaffold_app(agent_definition=agent_definition))
    (project / "cdk.json").write_text(json.dumps({"app": "python3 app.py", "context": dict(feature_flags)}, indent=2))
    return project
