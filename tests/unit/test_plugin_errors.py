"""What the plugin says when the cluster refuses or cannot be reached: one line naming the
cause, and the documented exit code (1 refused, 3 cannot reach the cluster)."""

from __future__ import annotations

import json

import pytest
import urllib3
from kubernetes.client.exceptions import ApiException
from kubernetes.config import ConfigException

from nonstop.cli.plugin.errors import (
    FAILED,
    UNREACHABLE,
    Doing,
    PluginError,
    doing,
    explain,
)


def refusal(status: int, message: str, reason: str = "Forbidden") -> ApiException:
    """An ApiException as kube/client.py raises it: the Status body as text."""
    error = ApiException(status=status, reason=reason)
    error.body = json.dumps(
        {"kind": "Status", "status": "Failure", "message": message, "code": status}
    )
    return error


def test_forbidden_names_the_verb_the_resource_the_namespace_and_the_user() -> None:
    said = (
        'rolloutactions.nonstop.dev is forbidden: User "system:serviceaccount:demo:viewer"'
        ' cannot create resource "rolloutactions" in API group "nonstop.dev" in the'
        ' namespace "demo"'
    )
    error = explain(refusal(403, said))
    assert error.exit_code == FAILED
    assert error.format_message() == (
        "forbidden: cannot create rolloutactions.nonstop.dev in namespace demo"
        " (as system:serviceaccount:demo:viewer)"
    )


def test_forbidden_core_and_cluster_wide() -> None:
    said = 'pods is forbidden: User "alice" cannot list resource "pods" in API group ""'
    error = explain(refusal(403, said))
    assert error.format_message() == "forbidden: cannot list pods in any namespace (as alice)"


def test_forbidden_without_the_servers_words_uses_what_the_request_was_for() -> None:
    error = explain(
        refusal(403, "denied by a webhook"),
        Doing("patch", "rollouts.nonstop.dev", "shop", "web"),
        user="ci-bot",
    )
    assert error.format_message() == (
        "forbidden: cannot patch rollouts.nonstop.dev in namespace shop (as ci-bot)"
    )
    assert explain(refusal(403, "denied")).format_message() == "forbidden: denied"


def test_not_found_names_the_object_or_the_missing_crd() -> None:
    got = explain(
        ApiException(status=404, reason="Not Found"),
        Doing("get", "rollouts.nonstop.dev", "shop", "web"),
    )
    assert got.format_message() == "Rollout web not found in namespace shop"
    assert got.exit_code == FAILED
    listed = explain(
        ApiException(status=404, reason="Not Found"), Doing("list", "rollouts.nonstop.dev")
    )
    assert "does not serve rollouts.nonstop.dev: is nonstop's CRD installed?" in str(
        listed.format_message()
    )


def test_other_answers_are_one_line_with_the_servers_message() -> None:
    said = 'Rollout.nonstop.dev "web" is invalid:\n spec.template: must not be empty'
    error = explain(refusal(422, said, "Invalid"), Doing("patch", "rollouts.nonstop.dev"))
    assert error.exit_code == FAILED
    assert error.format_message() == (
        "patch rollouts.nonstop.dev: the API server answered 422:"
        ' Rollout.nonstop.dev "web" is invalid: spec.template: must not be empty'
    )


def test_no_connection_is_exit_3_and_names_the_server_and_the_cause() -> None:
    pool = urllib3.HTTPSConnectionPool("127.0.0.1", 6443)
    refused = urllib3.exceptions.NewConnectionError(
        pool, "Failed to establish a new connection: [Errno 111] Connection refused"
    )
    error = explain(urllib3.exceptions.MaxRetryError(pool, "/apis", refused))
    assert error.exit_code == UNREACHABLE
    assert error.format_message() == (
        "cannot reach the cluster at https://127.0.0.1:6443: [Errno 111] Connection refused"
    )
    unauthorized = explain(ApiException(status=401, reason="Unauthorized"), server="https://k")
    assert unauthorized.exit_code == UNREACHABLE
    assert "at https://k: it refused the credentials" in unauthorized.format_message()
    config = explain(ConfigException("Invalid kube-config file. No configuration found."))
    assert config.exit_code == UNREACHABLE
    assert config.format_message().startswith("cannot reach the cluster: Invalid kube-config")


def test_doing_turns_client_errors_into_plugin_errors_and_leaves_others() -> None:
    with pytest.raises(PluginError) as caught, doing("get", "rollouts.nonstop.dev", "a", "b"):
        raise ApiException(status=404, reason="Not Found")
    assert caught.value.format_message() == "Rollout b not found in namespace a"
    assert isinstance(caught.value.__cause__, ApiException)  # kept for whoever needs it
    with pytest.raises(KeyError), doing("get", "pods"):
        raise KeyError("a bug stays a bug")


def test_an_error_shows_as_kubectl_does(capsys: pytest.CaptureFixture[str]) -> None:
    PluginError("forbidden: cannot get\n pods").show()
    assert capsys.readouterr().err == "error: forbidden: cannot get pods\n"
