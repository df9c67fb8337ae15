"""stacks/settings/istio.py: the `gateway` section."""

from __future__ import annotations

import pytest

from stacks import profiles
from tests.stacks.settings.raw import problems, settings, stack


def test_the_service_type_follows_the_profile():
    for name, profile in (("dev", "laptop"), ("edge", "edge"), ("cloud", "cloud")):
        assert settings(name, gateway={}).gateway.service_type == profiles.PROFILES[profile].gateway_service_type


def test_node_ports_are_in_the_node_port_range_and_differ():
    g = settings("cloud", gateway={"serviceType": "NodePort", "httpNodePort": 31080, "httpsNodePort": "31443"}).gateway
    assert (g.http_node_port, g.https_node_port) == (31080, 31443)
    found = problems(stack("cloud", gateway={"httpNodePort": 8080, "httpsNodePort": 32768}), "cloud")
    assert "from 30000 to 32767" in found["gateway.httpNodePort"] and "gateway.httpsNodePort" in found
    same = problems(stack("cloud", gateway={"httpNodePort": 30443}), "cloud")
    assert same == {"gateway.httpsNodePort": "must differ from gateway.httpNodePort (both 30443)"}


@pytest.mark.parametrize("gateway,key", [({"serviceType": "ClusterIP"}, "gateway.serviceType"),
                                         ({"servicetype": "NodePort"}, "gateway.servicetype")])
def test_bad_gateway_values_name_their_key(gateway, key):
    assert key in problems(stack("dev", gateway=gateway))


def test_node_ports_on_a_load_balancer_are_a_warning():
    warnings = settings("dev", gateway={"httpNodePort": 31080}).warnings()
    assert any(w.startswith("kubeflow-k3s:gateway.httpNodePort is ignored") for w in warnings)
