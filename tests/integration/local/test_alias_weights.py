"""A weighted ``live`` alias in local mode: a canary split is visible locally, and each answer names its version."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from agentrail_cli.client import IamAuth
from agentrail_local.apigateway.auth import DEFAULT_PRINCIPALS
from agentrail_local.awslambda.definitions import FunctionDefinition
from agentrail_local.cloud import LocalCloud
from agentrail_runtime.versions import version_for
from tests.integration.local.conftest import agent_function

pytestmark = pytest.mark.slow
ALICE = DEFAULT_PRINCIPALS[0]
REQUESTS = 200
#: 10% of 200 is 20; a binomial(200, 0.1) lies within 20 ± 12 with probability above 99.5%, and the RNG is seeded.
EXPECTED, TOLERANCE = 20, 12


@pytest.fixture(scope="module")
def cloud(local_cloud: Callable[..., LocalCloud], stateless_assembly: Path) -> LocalCloud:
    return local_cloud(stateless_assembly, routing=random.Random(14))


def publish_candidate(cloud: LocalCloud, prompt: str) -> tuple[str, str, str]:
    """Change the function's prompt, publish version 2 as a deploy would (its AGENT_VERSION stamped as synth does),
    and route 10% of ``live`` to it. Returns the function's name and the live and candidate agent versions."""
    assert cloud.environments is not None
    function = agent_function(cloud.deployments[0])
    definition: FunctionDefinition = function.local["function"]
    settings = {**definition.environment, "AGENT_SYSTEM_PROMPT": prompt}
    candidate = replace(definition, environment={**settings, "AGENT_VERSION": version_for(settings)})
    cloud.environments.update_function(candidate)
    cloud.environments.add_version(definition.name, "2")
    cloud.environments.add_alias(definition.name, "live", "1", {"2": 0.1})
    return definition.name, definition.environment["AGENT_VERSION"], candidate.environment["AGENT_VERSION"]


def invoke(http: httpx.Client) -> httpx.Response:
    """POST /invoke, waiting out the stage's throttle (429) as a client with backoff does."""
    for _ in range(100):
        response = http.post("invoke", json={"message": "Calculate 6 * 7"})
        if response.status_code != 429:
            return response
        time.sleep(0.1)
    return response


def test_with_weights_90_10_about_a_tenth_of_200_requests_reach_the_new_version_and_say_so_in_x_agent_version(
    cloud: LocalCloud,
) -> None:
    _, live, candidate = publish_candidate(cloud, "Answer in one sentence.")
    endpoint = cloud.endpoint(pattern="stateless")
    auth = IamAuth.from_keys(ALICE.access_key_id, ALICE.secret_access_key)

    answered: Counter[str] = Counter()
    with httpx.Client(base_url=endpoint.url + "/", auth=auth, timeout=60) as http:
        for _ in range(REQUESTS):
            response = invoke(http)
            assert response.status_code == 200, response.text
            answered[response.headers["x-agent-version"]] += 1

    assert live != candidate
    assert set(answered) == {live, candidate}
    assert abs(answered[candidate] - EXPECTED) <= TOLERANCE, answered
    assert answered[live] + answered[candidate] == REQUESTS


def test_an_alias_with_weights_over_one_is_refused(cloud: LocalCloud) -> None:
    assert cloud.environments is not None
    function = agent_function(cloud.deployments[0])

    with pytest.raises(ValueError, match="invalid routing weights"):
        cloud.environments.add_alias(function.local["function"].name, "live", "1", {"2": 0.7, "3": 0.6})
