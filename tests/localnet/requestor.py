"""The requestor side with plain ``requests`` calls, as the research notes describe it.

Deliberately independent of ``golem_tasks.providers.yagna``: these tests prove the local
network against the REST API itself.
"""

from __future__ import annotations

import datetime
import json
import time
from typing import Any, Callable, Dict, List, Optional

import requests

PLATFORM = "erc20-hoodi-tglm"


def iso_in(seconds: float) -> str:
    return (
        datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    ).isoformat()


class PlainRequestor:
    """A requestor app key on the daemon; each method is one or two REST calls."""

    def __init__(self, api_url: str, app_key: str) -> None:
        self.api_url = api_url
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.headers["Authorization"] = f"Bearer {app_key}"
        self.demands: List[str] = []
        self.allocations: List[str] = []
        #: per demand: market events read but not yet consumed by :meth:`wait_for`
        self.backlog: Dict[str, List[Dict[str, Any]]] = {}

    def __enter__(self) -> "PlainRequestor":
        return self

    def __exit__(self, *exc: object) -> None:
        for demand in self.demands:
            self.http.delete(f"{self.api_url}/market-api/v1/demands/{demand}")
        for allocation in self.allocations:
            self.http.delete(f"{self.api_url}/payment-api/v1/allocations/{allocation}")
        self.http.close()

    def request(self, method: str, path: str, expect: int, **kw: Any) -> Any:
        response = self.http.request(method, self.api_url + path, timeout=60, **kw)
        assert response.status_code == expect, (
            f"{method} {path}: {response.status_code} {response.text}"
        )
        return response.json() if response.content else None

    # -- payment -------------------------------------------------------------------

    def allocate(self, amount: str = "10") -> Dict[str, Any]:
        body = {
            "totalAmount": amount,
            "timeout": iso_in(3600),
            "paymentPlatform": PLATFORM,
            "makeDeposit": False,
        }
        allocation = self.request("POST", "/payment-api/v1/allocations", 201, json=body)
        self.allocations.append(allocation["allocationId"])
        return allocation

    # -- market --------------------------------------------------------------------

    def demand_body(self, allocation_id: str, expires_in: float = 20 * 60) -> Dict[str, Any]:
        decoration = self.request(
            "GET", "/payment-api/v1/demandDecorations", 200, params={"allocationIds": allocation_id}
        )
        properties: Dict[str, Any] = {
            "golem.srv.comp.expiration": int((time.time() + expires_in) * 1000),
            "golem.node.debug.subnet": "public",
            "golem.srv.comp.task_package": "hash:sha3:0000:http://127.0.0.1:1/image.gvmi",
            "golem.srv.comp.vm.package_format": "gvmkit-squash",
        }
        properties.update({p["key"]: p["value"] for p in decoration["properties"]})
        constraints = (
            "(&(golem.inf.mem.gib>=0.5)(golem.inf.storage.gib>=2)(golem.runtime.name=vm)"
            + ("(golem.node.debug.subnet=public)" + "".join(decoration["constraints"]) + ")")
        )
        return {"properties": properties, "constraints": constraints}

    def subscribe(self, body: Dict[str, Any]) -> str:
        demand = self.request("POST", "/market-api/v1/demands", 201, json=body)
        self.demands.append(demand)
        return str(demand)

    def events(self, demand: str, timeout: float = 5) -> List[Dict[str, Any]]:
        path = f"/market-api/v1/demands/{demand}/events"
        return list(self.request("GET", path, 200, params={"timeout": timeout, "maxEvents": 50}))

    def counter(self, demand: str, proposal_id: str, body: Dict[str, Any]) -> str:
        properties = dict(body["properties"])
        properties["golem.com.payment.chosen-platform"] = PLATFORM
        properties["golem.com.payment.debit-notes.accept-timeout?"] = 120
        new = {"properties": properties, "constraints": body["constraints"]}
        return str(
            self.request(
                "POST", f"/market-api/v1/demands/{demand}/proposals/{proposal_id}", 200, json=new
            )
        )

    def negotiate(self, demand: str, body: Dict[str, Any], issuer: str) -> Dict[str, Any]:
        """Counter the ``issuer``'s initial proposal and return its answer: a
        ``ProposalEvent`` (Draft) or a ``ProposalRejectedEvent``."""
        initial = self.wait_for(demand, lambda e: e.get("proposal", {}).get("issuerId") == issuer)
        assert initial["proposal"]["state"] == "Initial", initial
        counter_id = self.counter(demand, initial["proposal"]["proposalId"], body)

        def answer(event: Dict[str, Any]) -> bool:
            if event["eventType"] == "ProposalRejectedEvent":
                return bool(event["proposalId"] == counter_id)
            return bool(event.get("proposal", {}).get("prevProposalId") == counter_id)

        return self.wait_for(demand, answer)

    def wait_for(
        self, demand: str, match: Callable[[Dict[str, Any]], bool], deadline: float = 15
    ) -> Dict[str, Any]:
        """The first market event that ``match``-es; others are kept for later calls."""
        end = time.monotonic() + deadline
        backlog = self.backlog.setdefault(demand, [])
        while True:
            for event in backlog:
                if match(event):
                    backlog.remove(event)
                    return event
            if time.monotonic() > end:
                raise AssertionError(f"no matching event within {deadline} s; seen: {backlog}")
            backlog += self.events(demand, timeout=1)

    def agree(self, proposal_id: str) -> str:
        body = {"proposalId": proposal_id, "validTo": iso_in(3600)}
        agreement = str(self.request("POST", "/market-api/v1/agreements", 200, json=body))
        self.request(
            "POST",
            f"/market-api/v1/agreements/{agreement}/confirm",
            204,
            params={"appSessionId": "tests"},
        )
        return agreement

    def wait_for_approval(self, agreement: str, timeout: float = 10) -> requests.Response:
        return self.http.post(
            f"{self.api_url}/market-api/v1/agreements/{agreement}/wait",
            params={"timeout": timeout},
            timeout=timeout + 10,
        )

    def terminate(self, agreement: str, message: Optional[str] = "done") -> None:
        body = {"message": message, "golem.requestor.code": "Success"}
        self.request("POST", f"/market-api/v1/agreements/{agreement}/terminate", 200, json=body)

    # -- activity ------------------------------------------------------------------

    def engage(self, provider_id: str, allocation_id: str) -> str:
        """Negotiate and get an approved agreement with ``provider_id``."""
        body = self.demand_body(allocation_id)
        demand = self.subscribe(body)
        draft = self.negotiate(demand, body, provider_id)
        assert draft["eventType"] == "ProposalEvent", draft
        agreement = self.agree(draft["proposal"]["proposalId"])
        approval = self.wait_for_approval(agreement)
        assert approval.status_code == 204, approval.text
        return agreement

    def create_activity(self, agreement: str) -> str:
        answer = self.request(
            "POST",
            "/activity-api/v1/activity",
            200,
            params={"timeout": 15},
            json={"agreementId": agreement},
        )
        return str(answer["activityId"])

    def exec(self, activity: str, script: List[Dict[str, Any]]) -> str:
        path = f"/activity-api/v1/activity/{activity}/exec"
        return str(self.request("POST", path, 200, json={"text": json.dumps(script)}))

    def results(
        self, activity: str, batch: str, timeout: float = 10, **params: Any
    ) -> requests.Response:
        return self.http.get(
            f"{self.api_url}/activity-api/v1/activity/{activity}/exec/{batch}",
            params={"timeout": timeout, **params},
            timeout=timeout + 10,
        )

    def run_script(
        self, activity: str, script: List[Dict[str, Any]], timeout: float = 20
    ) -> List[Dict[str, Any]]:
        """Exec and poll until ``isBatchFinished``; return every result."""
        batch = self.exec(activity, script)
        found: Dict[int, Dict[str, Any]] = {}
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            answer = self.results(activity, batch, timeout=2)
            assert answer.status_code == 200, answer.text
            for result in answer.json():
                found[result["index"]] = result
            if any(r["isBatchFinished"] for r in found.values()):
                return [found[i] for i in sorted(found)]
        raise AssertionError(f"batch {batch} not finished in {timeout} s: {found}")

    def state(self, activity: str) -> List[Optional[str]]:
        return list(
            self.request("GET", f"/activity-api/v1/activity/{activity}/state", 200)["state"]
        )

    def destroy(self, activity: str) -> None:
        self.request("DELETE", f"/activity-api/v1/activity/{activity}", 200, params={"timeout": 10})
