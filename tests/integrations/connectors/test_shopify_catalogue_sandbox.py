"""The sandbox shop refuses product writes the way Shopify does (user errors, nothing changed), needs
`write_products`, replaces a product's variants on productSet, checks price lists' currencies, and
runs bulk mutations as Shopify does: from a staged file, one at a time per shop, next to a bulk query,
with result lines naming their input line."""
import json

import pytest
import requests

from integrations.connectors.shopify import catalogue_write
from integrations.connectors.shopify.bulk import RUN_QUERY

TOKEN = "shpat_sandbox_token"


def graphql(sandbox, query, variables=None, token=TOKEN):
    response = requests.post(f"{sandbox.url}/shopify/admin/api/2026-04/graphql.json", timeout=10,
                             json={"query": query, "variables": variables or {}},
                             headers={"X-Shopify-Access-Token": token})
    assert response.status_code == 200, response.text
    return response.json()


def product_set(sandbox, data, handle="tee", token=TOKEN):
    body = graphql(sandbox, catalogue_write.PRODUCT_SET, {"identifier": {"handle": handle}, "input": data,
                                                          "variants": 10}, token)
    return body if body.get("errors") else body["data"]["productSet"]


def sized(*sizes, price="10.00"):
    return {"title": "Tee", "productOptions": [{"name": "Size", "values": [{"name": s} for s in sizes]}],
            "variants": [{"optionValues": [{"optionName": "Size", "name": s}], "price": price,
                          "inventoryItem": {"sku": f"TEE-{s}"}} for s in sizes]}


@pytest.fixture
def shop(sandbox):
    sandbox.shopify.reset(seed=False)
    sandbox.shopify.add_location("Main warehouse")
    return sandbox.shopify


@pytest.mark.parametrize("data, code", [
    ({"title": "Tee", "variants": sized("S")["variants"]}, "PRODUCT_OPTIONS_INPUT_MISSING"),
    ({"title": "Tee", "productOptions": sized("S")["productOptions"]}, "VARIANTS_INPUT_MISSING"),
    ({**sized("S"), "variants": [{"optionValues": [{"optionName": "Size", "name": "XL"}], "price": "1.00"}]},
     "OPTION_VALUE_DOES_NOT_EXIST"),
    ({**sized("S", "M"), "variants": sized("S", "S")["variants"]}, "INVALID_VARIANT"),
    (sized("S", price="-1.00"), "INVALID_VARIANT"),
    ({**sized("S"), "title": ""}, "INVALID_PRODUCT"),
])
def test_invalid_product_input_is_a_user_error_and_changes_nothing(sandbox, shop, data, code):
    answer = product_set(sandbox, data)
    assert answer["product"] is None
    assert code in [e["code"] for e in answer["userErrors"]]
    assert shop.products == {} and shop.variants == {}


def test_product_writes_need_write_products(sandbox, shop):
    token = shop.add_access_token(["read_products"])
    body = product_set(sandbox, sized("S"), token=token)
    assert body["errors"][0]["extensions"]["code"] == "ACCESS_DENIED" and shop.products == {}


def test_productset_replaces_the_variants_and_a_left_out_variant_goes_with_its_stock(sandbox, shop):
    first = product_set(sandbox, sized("S", "M", "L"))
    assert first["userErrors"] == []
    large = shop.variant_by_sku("TEE-L")
    second = product_set(sandbox, sized("S", "M", price="12.00"))
    assert [v["sku"] for v in second["product"]["variants"]["nodes"]] == ["TEE-S", "TEE-M"]
    assert second["product"]["id"] == first["product"]["id"]
    assert shop.variant_by_sku("TEE-L") is None and large["inventory_item"] not in shop.inventory_items
    assert not any(item == large["inventory_item"] for item, _ in shop.levels)
    assert shop.variant_by_sku("TEE-S")["price"] == "12.00"


def test_variants_and_price_lists_refuse_what_does_not_belong(sandbox, shop):
    product_set(sandbox, sized("S"))
    product_set(sandbox, {**sized("M"), "title": "Other"}, handle="other")
    other = shop.variant_by_sku("TEE-M")
    tee = shop.product_by_handle("tee")
    update = graphql(sandbox, catalogue_write.VARIANTS_BULK_UPDATE, {
        "productId": f"gid://shopify/Product/{tee['number']}",
        "variants": [{"id": f"gid://shopify/ProductVariant/{other['number']}", "price": "1.00"}]})
    assert update["data"]["productVariantsBulkUpdate"]["userErrors"][0]["code"] == "MUST_BE_FOR_THIS_PRODUCT"
    assert other["price"] == "10.00"

    eur = shop.add_price_list("Europe", "EUR")
    wrong = graphql(sandbox, catalogue_write.PRICE_LIST_ADD, {"priceListId": eur, "prices": [{
        "variantId": f"gid://shopify/ProductVariant/{other['number']}",
        "price": {"amount": "9.00", "currencyCode": "GBP"}}]})["data"]["priceListFixedPricesAdd"]
    assert wrong["userErrors"][0]["code"] == "PRICE_LIST_CURRENCY_MISMATCH" and shop.fixed_price(eur, "TEE-M") is None
    missing = graphql(sandbox, catalogue_write.PRICE_LIST_ADD, {"priceListId": "gid://shopify/PriceList/1", "prices": []})
    assert missing["data"]["priceListFixedPricesAdd"]["userErrors"][0]["code"] == "PRICE_LIST_NOT_FOUND"


def _stage(sandbox, lines: list[dict]) -> str:
    staged = graphql(sandbox, catalogue_write.STAGED_UPLOADS_CREATE, {"input": [{
        "resource": "BULK_MUTATION_VARIABLES", "filename": "vars.jsonl", "mimeType": "text/jsonl",
        "httpMethod": "POST"}]})["data"]["stagedUploadsCreate"]
    (target,) = staged["stagedTargets"]
    parameters = [(p["name"], p["value"]) for p in target["parameters"]]
    body = "".join(json.dumps(line) + "\n" for line in lines).encode()
    uploaded = requests.post(target["url"], data=parameters, files={"file": ("vars.jsonl", body, "text/jsonl")},
                             timeout=10)
    assert uploaded.status_code == 201 and "<PostResponse>" in uploaded.text
    return dict(parameters)["key"]


def _run(sandbox, path, mutation=catalogue_write.PRODUCT_SET):
    return graphql(sandbox, catalogue_write.BULK_RUN_MUTATION,
                   {"mutation": mutation, "stagedUploadPath": path})["data"]["bulkOperationRunMutation"]


def test_a_bulk_mutation_needs_a_staged_file_and_a_valid_mutation(sandbox, shop):
    assert _run(sandbox, "tmp/none/bulk/x/vars.jsonl")["userErrors"][0]["code"] == "NO_SUCH_FILE"
    path = _stage(sandbox, [{"identifier": {"handle": "a"}, "input": sized("S"), "variants": 1}])
    invalid = _run(sandbox, path, "mutation { productSet(input: {title: 1}) { nope } }")
    assert invalid["bulkOperation"] is None and invalid["userErrors"][0]["code"] == "INVALID_MUTATION"


def test_bulk_result_lines_name_their_input_line_and_a_bulk_query_may_run_alongside(sandbox, shop):
    shop.configure(bulk_mutations_paused=True)
    lines = [{"identifier": {"handle": f"p{n}"}, "input": {**sized("S"), "title": f"P{n}",
                                                          "variants": [{**sized("S")["variants"][0],
                                                                        "inventoryItem": {"sku": f"SKU-{n}"}}]},
              "variants": 1} for n in range(5)]
    lines[3]["input"]["variants"][0]["price"] = "oops"
    started = _run(sandbox, _stage(sandbox, lines))
    assert started["userErrors"] == [] and started["bulkOperation"]["status"] == "CREATED"
    query = graphql(sandbox, RUN_QUERY, {"query": "{ products { edges { node { id } } } }"})
    assert query["data"]["bulkOperationRunQuery"]["userErrors"] == []  # one query and one mutation at a time

    shop.configure(bulk_mutations_paused=False)
    shop.wait_for_bulk_mutations()
    done = graphql(sandbox, catalogue_write.BULK_POLL, {"id": started["bulkOperation"]["id"]})["data"]["bulkOperation"]
    assert (done["status"], done["type"], done["objectCount"]) == ("COMPLETED", "MUTATION", "5")
    result = [json.loads(line) for line in requests.get(done["url"], timeout=10).text.splitlines()]
    assert [line["__lineNumber"] for line in result] == [0, 2, 4, 1, 3]  # no promised order
    by_line = {line["__lineNumber"]: line for line in result}
    assert by_line[1]["data"]["productSet"]["product"]["handle"] == "p1"
    assert by_line[3]["data"]["productSet"]["userErrors"][0]["field"] == ["input", "variants", "0", "price"]
    assert len(shop.products) == 4


IMAGE = "https://images.example.com/tee.jpg"


@pytest.mark.parametrize("extra, code", [
    ({"metafields": [{"namespace": "ledgerline", "key": "material", "value": "cotton"}]}, "INVALID_METAFIELD"),
    ({"metafields": [{"namespace": "ledgerline", "key": "w", "type": "number_integer", "value": "1"}]},
     "INVALID_METAFIELD"),
    ({"metafields": [{"namespace": "ledgerline", "key": "weight", "type": "number_integer", "value": "1.5"}]},
     "INVALID_METAFIELD"),
    ({"files": [{"originalSource": "not a url", "contentType": "IMAGE"}]}, "INVALID_INPUT"),
])
def test_invalid_files_and_metafields_are_user_errors_and_change_nothing(sandbox, shop, extra, code):
    answer = product_set(sandbox, {**sized("S"), **extra})
    assert answer["product"] is None and code in [e["code"] for e in answer["userErrors"]]
    assert shop.products == {} and shop.media == {}


def test_a_variant_file_must_be_one_of_the_products_files(sandbox, shop):
    data = sized("S")
    data["variants"][0]["file"] = {"originalSource": IMAGE, "contentType": "IMAGE"}
    refused = product_set(sandbox, data)
    assert refused["userErrors"][0]["field"] == ["input", "variants", "0", "file"] and shop.products == {}

    answer = product_set(sandbox, {**data, "files": [{"originalSource": IMAGE, "contentType": "IMAGE", "alt": "Tee"}]})
    assert answer["userErrors"] == []
    (media,) = shop.product_media(shop.product_by_handle("tee")["number"])
    assert media["source"] == IMAGE and media["alt"] == "Tee" and shop.variant_by_sku("TEE-S")["media"] == [
        int(media["id"].rsplit("/", 1)[1])]


def test_files_are_matched_by_id_and_a_source_sent_again_is_a_new_media(sandbox, shop):
    product_set(sandbox, {**sized("S"), "files": [{"originalSource": IMAGE}]})
    number = shop.product_by_handle("tee")["number"]
    (first,) = shop.product_media(number)

    product_set(sandbox, {**sized("S"), "files": [{"id": first["id"]}]})
    assert shop.product_media(number) == [first] and shop.media_created == 1
    product_set(sandbox, {**sized("S"), "files": [{"originalSource": IMAGE}]})
    (again,) = shop.product_media(number)
    assert again["id"] != first["id"] and shop.media_created == 2  # fetched anew, the old one left out and gone
    product_set(sandbox, sized("S"))  # no files: the media stay
    assert shop.product_media(number) == [again]


def test_metafields_are_stored_typed_readable_and_replaced_as_a_list(sandbox, shop):
    fields = [{"namespace": "ledgerline", "key": "material", "type": "single_line_text_field", "value": "cotton"},
              {"namespace": "ledgerline", "key": "care", "type": "list.single_line_text_field",
               "value": '["wash cold"]'}]
    answer = product_set(sandbox, {**sized("S"), "metafields": fields})
    assert answer["userErrors"] == []
    gid = answer["product"]["id"]
    read = graphql(sandbox, 'query($id: ID!) { product(id: $id) { variantsCount { count } '
                            'metafield(namespace: "ledgerline", key: "care") { type value } } }', {"id": gid})
    assert read["data"]["product"] == {"variantsCount": {"count": 1},
                                       "metafield": {"type": "list.single_line_text_field", "value": '["wash cold"]'}}
    product_set(sandbox, {**sized("S"), "metafields": fields[:1]})
    assert shop.metafields_of(shop.product_by_handle("tee")) == {"ledgerline.material": ("single_line_text_field",
                                                                                         "cotton")}


def test_productset_by_id_keeps_the_handle_and_an_unknown_id_is_refused(sandbox, shop):
    created = product_set(sandbox, sized("S"))["product"]
    body = graphql(sandbox, catalogue_write.PRODUCT_SET, {"identifier": {"id": created["id"]},
                                                          "input": {"title": "Renamed"}, "variants": 1})
    assert body["data"]["productSet"]["product"]["handle"] == "tee"
    assert shop.product_by_handle("tee")["title"] == "Renamed"
    missing = graphql(sandbox, catalogue_write.PRODUCT_SET, {"identifier": {"id": "gid://shopify/Product/1"},
                                                             "input": {"title": "X"}, "variants": 1})
    assert missing["data"]["productSet"]["userErrors"][0]["code"] == "PRODUCT_DOES_NOT_EXIST"
