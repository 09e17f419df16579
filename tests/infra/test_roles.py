"""Role assignments use the published built-in role ids, and each identity gets exactly the roles it needs."""
from __future__ import annotations

import re

from tree_sitter import Node

from tests.infra import bicep_source as b

# Built-in role definition ids as published in Microsoft's "Azure built-in roles" reference (the
# same ids are in docs/azure.md#roles and the Azure Batch RBAC article).
BUILT_IN_ROLES = {
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Azure Batch Job Submitter": "48e5e92e-a480-4e71-aa9c-2778f4c13781",
    "Azure Batch Account Reader": "11076f67-66f6-4be0-8f6b-f0609fd05cc9",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    "AcrPull": "7f951dda-4ed3-4680-a7ca-43fe172d538d",
}
# The key each role has in the `roles` variable of infra/app/rbac.bicep.
ROLE_KEYS = {
    "storageBlobDataOwner": "Storage Blob Data Owner",
    "storageBlobDataContributor": "Storage Blob Data Contributor",
    "storageQueueDataContributor": "Storage Queue Data Contributor",
    "storageTableDataContributor": "Storage Table Data Contributor",
    "azureBatchJobSubmitter": "Azure Batch Job Submitter",
    "azureBatchAccountReader": "Azure Batch Account Reader",
    "monitoringMetricsPublisher": "Monitoring Metrics Publisher",
    "acrPull": "AcrPull",
}
# (principal parameter, role, scope resource) of every assignment: least privilege per identity.
EXPECTED_ASSIGNMENTS = {
    # Function App: blob trigger + host storage need blob owner, queue (poison/receipts) and table
    ("apiPrincipalId", "Storage Blob Data Owner", "storage"),
    ("apiPrincipalId", "Storage Queue Data Contributor", "storage"),
    ("apiPrincipalId", "Storage Table Data Contributor", "storage"),
    ("apiPrincipalId", "Azure Batch Job Submitter", "batchAccount"),
    ("apiPrincipalId", "Monitoring Metrics Publisher", "applicationInsights"),
    # Batch nodes: pull the trainer image, read datasets / write models, write status rows
    ("nodePrincipalId", "AcrPull", "registry"),
    ("nodePrincipalId", "Storage Blob Data Contributor", "storage"),
    ("nodePrincipalId", "Storage Table Data Contributor", "storage"),
    # deploying user, optional
    ("principalId", "Storage Blob Data Contributor", "storage"),
    ("principalId", "Storage Table Data Contributor", "storage"),
    ("principalId", "Azure Batch Account Reader", "batchAccount"),
}
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
RBAC = b.INFRA / "app" / "rbac.bicep"


def roles_variable() -> dict[str, str]:
    decl = b.declaration(b.parse(RBAC), "var", "roles")
    assert decl.value is not None
    return {key: b.string_value(value) for key, value in b.object_properties(decl.value)}


def role_key(expression: Node) -> str:
    """'roles.acrPull' -> 'acrPull' (the only way a role may be named in an assignment)."""
    text = b.text(expression)
    assert re.fullmatch(r"roles\.\w+", text), f"role must be referenced as roles.<name>, got {text!r}"
    return text.split(".", 1)[1]


def assignments() -> list[dict[str, object]]:
    found = []
    for decl in b.declarations(b.parse(RBAC), "resource"):
        if not b.resource_type(decl).startswith("Microsoft.Authorization/roleAssignments@"):
            continue
        assert decl.value is not None
        body = b.body(decl.value)
        props = b.get_path(body, "properties")
        definition = b.get_path(props, "roleDefinitionId")
        args = definition.named_children[1].named_children  # subscriptionResourceId(type, id)
        assert b.text(definition.named_children[0]) == "subscriptionResourceId"
        assert b.string_value(args[0]) == "Microsoft.Authorization/roleDefinitions"
        name_args = b.get_path(body, "name").named_children[1].named_children  # guid(scope.id, principal, role)
        found.append(
            {
                "symbol": decl.name,
                "role": role_key(args[1]),
                "name_role": role_key(name_args[2]),
                "name_scope": b.text(name_args[0]),
                "name_principal": b.text(name_args[1]),
                "principal": b.text(b.get_path(props, "principalId")),
                "principal_type": b.text(b.get_path(props, "principalType")),
                "scope": b.text(b.get_path(body, "scope")),
                "conditional": decl.value.type == "if_statement" or b.text(decl.value).startswith("if"),
            }
        )
    return found


def test_role_ids_match_the_published_built_in_ids() -> None:
    roles = roles_variable()
    assert set(roles) == set(ROLE_KEYS), f"unexpected role keys: {set(roles) ^ set(ROLE_KEYS)}"
    for key, role_id in roles.items():
        assert role_id == BUILT_IN_ROLES[ROLE_KEYS[key]], f"{key} ({ROLE_KEYS[key]}) has id {role_id}"


def test_no_role_id_is_written_outside_the_roles_table() -> None:
    for path in b.bicep_files():
        source = path.read_text()
        if path == RBAC:
            decl = b.declaration(b.parse(RBAC), "var", "roles")
            source = source.replace(b.text(decl.node), "")
        assert GUID.findall(source) == [], f"{path.name} writes a GUID outside rbac.bicep's roles table"


def test_each_identity_gets_exactly_the_expected_roles() -> None:
    actual = {(a["principal"], ROLE_KEYS[a["role"]], a["scope"]) for a in assignments()}
    assert actual == EXPECTED_ASSIGNMENTS, (
        f"missing: {EXPECTED_ASSIGNMENTS - actual}; not expected (least privilege): {actual - EXPECTED_ASSIGNMENTS}"
    )
    assert len(assignments()) == len(EXPECTED_ASSIGNMENTS), "an assignment is duplicated"


def test_assignment_names_are_derived_from_their_own_scope_principal_and_role() -> None:
    for a in assignments():
        assert a["name_role"] == a["role"], f"{a['symbol']}: guid() uses roles.{a['name_role']}"
        assert a["name_scope"] == f"{a['scope']}.id", f"{a['symbol']}: guid() uses {a['name_scope']}"
        assert a["name_principal"] == a["principal"], f"{a['symbol']}: guid() uses {a['name_principal']}"


def test_managed_identities_are_service_principals_and_the_user_is_optional() -> None:
    for a in assignments():
        if a["principal"] == "principalId":
            assert a["conditional"], f"{a['symbol']}: the deploying user's roles must be optional"
            assert a["principal_type"] == "principalType"
        else:
            assert not a["conditional"]
            assert a["principal_type"] == "'ServicePrincipal'"
