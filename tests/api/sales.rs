//! Sales over the API: drafted, confirmed, paid, refunded, fulfilled and cancelled.

use super::*;

pub(crate) const SALE_FIELDS: &str = "sale { id status salespersonId invoiceNumber total { amount } amountPaid { amount } balanceDue { amount } lines { itemId item { status } } payments { kind amount { amount } } customer { name } } position errors { field code message }";

pub(crate) async fn a_sale_is_drafted_confirmed_paid_refunded_and_fulfilled(app: TestApp) {
    let owner = app.owner().await;
    let customer = create_customer(&app, &owner, "Sam Sale").await;
    let item = acquire_item(&app, &owner, "1000.00").await;
    let r = app
        .gql(Some(&owner), &format!("mutation($c: ID!, $i: ID!) {{ createSale(input: {{customerId: $c, lines: [{{itemId: $i, price: {{amount: \"1000.00\", currency: \"USD\"}}, discount: {{amount: \"100.00\", currency: \"USD\"}}}}], tax: {{amount: \"72.00\", currency: \"USD\"}}, tradeIns: [{{category: WATCH, brand: \"Seiko\", model: \"SKX007\", credit: {{amount: \"172.00\", currency: \"USD\"}}}}], buyerName: \"Sam Sale\", buyerAddress: \"1 Main St\"}}) {{ {SALE_FIELDS} }} }}"), json!({"c": customer, "i": item}))
        .await;
    let sale = &r["data"]["createSale"]["sale"];
    assert_eq!(sale["status"], "DRAFT", "{r}");
    assert_eq!(sale["total"]["amount"], "800.00", "1000 - 100 + 72 tax - 172 trade-in");
    let id = sale["id"].as_str().unwrap().to_owned();
    let pay = |amount: &'static str, kind: &'static str, key: Option<&'static str>| {
        let (app, owner, id) = (&app, owner.clone(), id.clone());
        async move {
            app.gql(Some(&owner), &format!("mutation($s: ID!, $k: String) {{ recordPayment(input: {{saleId: $s, amount: {{amount: \"{amount}\", currency: \"USD\"}}, method: CARD, kind: {kind}, idempotencyKey: $k}}) {{ {SALE_FIELDS} }} }}"), json!({"s": id, "k": key})).await
        }
    };
    let r = pay("100.00", "DEPOSIT", None).await;
    assert_eq!(r["data"]["recordPayment"]["sale"]["status"], "DRAFT", "layaway deposit on a draft: {r}");
    let r = app
        .gql(
            Some(&owner),
            &format!("mutation($s: ID!) {{ confirmSale(input: {{saleId: $s}}) {{ {SALE_FIELDS} }} }}"),
            json!({"s": id}),
        )
        .await;
    let sale = &r["data"]["confirmSale"]["sale"];
    assert_eq!(sale["status"], "PARTIALLY_PAID", "{r}");
    assert_eq!(sale["invoiceNumber"], 1);
    assert_eq!(sale["lines"][0]["item"]["status"], "SOLD");
    assert_eq!(sale["customer"]["name"], "Sam Sale");
    let me = app.gql(Some(&owner), "{ me { userId } }", json!({})).await;
    assert_eq!(sale["salespersonId"], me["data"]["me"]["userId"], "the salesperson is who drafted it");
    // The trade-in is now inventory, acquired as TRADE_IN at its credit.
    let r = app.gql(Some(&owner), "{ inventoryItems(where: {brand: \"Seiko\"}) { edges { node { acquisitionSource cost { amount } status } } } }", json!({})).await;
    assert_eq!(
        r["data"]["inventoryItems"]["edges"][0]["node"],
        json!({"acquisitionSource": "TRADE_IN", "cost": {"amount": "172.00"}, "status": "IN_STOCK"}),
        "{r}"
    );
    // The same idempotency key twice records one payment.
    let first = pay("300.00", "PAYMENT", Some("pay-1")).await;
    let again = pay("300.00", "PAYMENT", Some("pay-1")).await;
    assert_eq!(first["data"]["recordPayment"]["sale"]["amountPaid"]["amount"], "400.00", "{first}");
    assert_eq!(again["data"]["recordPayment"]["sale"]["amountPaid"]["amount"], "400.00", "{again}");
    assert_eq!(again["data"]["recordPayment"]["errors"], json!([]));
    let r = pay("400.01", "PAYMENT", None).await;
    assert_eq!(r["data"]["recordPayment"]["errors"][0]["code"], "AMOUNT_NOT_ALLOWED", "{r}");
    let r = pay("400.00", "PAYMENT", None).await;
    assert_eq!(r["data"]["recordPayment"]["sale"]["status"], "PAID");
    assert_eq!(r["data"]["recordPayment"]["sale"]["balanceDue"]["amount"], "0.00");
    let refund = |amount: &'static str| {
        let (app, owner, id) = (&app, owner.clone(), id.clone());
        async move {
            app.gql(Some(&owner), &format!("mutation($s: ID!) {{ refundPayment(input: {{saleId: $s, amount: {{amount: \"{amount}\", currency: \"USD\"}}, reason: \"goodwill\"}}) {{ {SALE_FIELDS} }} }}"), json!({"s": id})).await
        }
    };
    assert_eq!(refund("800.01").await["data"]["refundPayment"]["errors"][0]["code"], "AMOUNT_NOT_ALLOWED");
    let r = refund("50.00").await;
    assert_eq!(r["data"]["refundPayment"]["sale"]["status"], "PARTIALLY_PAID", "{r}");
    pay("50.00", "PAYMENT", None).await;
    let r = app
        .gql(
            Some(&owner),
            &format!("mutation($s: ID!) {{ fulfilSale(input: {{saleId: $s}}) {{ {SALE_FIELDS} }} }}"),
            json!({"s": id}),
        )
        .await;
    assert_eq!(r["data"]["fulfilSale"]["sale"]["status"], "FULFILLED", "{r}");
    // Lifetime value is derived from the confirmed sale.
    let r = app
        .gql(
            Some(&owner),
            "query($c: ID!) { customer(id: $c) { lifetimeValue { amount currency } orderCount } }",
            json!({"c": customer}),
        )
        .await;
    assert_eq!(
        r["data"]["customer"],
        json!({"lifetimeValue": {"amount": "800.00", "currency": "USD"}, "orderCount": 1}),
        "{r}"
    );
    // The item cannot be sold again: a second sale of it is rejected on confirmation.
    let r = app
        .gql(Some(&owner), &format!("mutation($i: ID!) {{ createSale(input: {{lines: [{{itemId: $i, price: {{amount: \"900.00\", currency: \"USD\"}}}}]}}) {{ {SALE_FIELDS} }} }}"), json!({"i": item}))
        .await;
    let second = r["data"]["createSale"]["sale"]["id"].as_str().unwrap().to_owned();
    let r = app
        .gql(
            Some(&owner),
            &format!("mutation($s: ID!) {{ confirmSale(input: {{saleId: $s}}) {{ {SALE_FIELDS} }} }}"),
            json!({"s": second}),
        )
        .await;
    assert_eq!(r["data"]["confirmSale"]["errors"][0]["code"], "ILLEGAL_TRANSITION", "{r}");
    // Mixing currencies in one sale is rejected.
    let r = app
        .gql(Some(&owner), &format!("mutation($i: ID!) {{ createSale(input: {{lines: [{{itemId: $i, price: {{amount: \"900.00\", currency: \"USD\"}}}}], tax: {{amount: \"1.00\", currency: \"EUR\"}}}}) {{ {SALE_FIELDS} }} }}"), json!({"i": item}))
        .await;
    assert_eq!(r["data"]["createSale"]["errors"][0]["code"], "CURRENCY_MISMATCH", "{r}");
    // History: the sale as of a time before its confirmation was a draft.
    let r = app.gql(Some(&owner), "query($s: ID!) { sales(where: {status: FULFILLED}) { totalCount } sale(id: $s, asOf: \"2999-01-01T00:00:00Z\") { status invoiceNumber } }", json!({"s": id})).await;
    assert_eq!(r["data"]["sales"]["totalCount"], 1, "{r}");
    assert_eq!(r["data"]["sale"], json!({"status": "FULFILLED", "invoiceNumber": 1}));
    // Buyer identity is legal-hold personal data: not in the log in plaintext.
    let raw = raw_payloads(&app).await;
    assert!(raw.iter().all(|p| !p.contains("1 Main St") && !p.contains("Sam Sale")), "buyer identity in plaintext");
}

pub(crate) async fn cancelling_a_confirmed_sale_voids_its_invoice_and_restocks_the_item(app: TestApp) {
    let owner = app.owner().await;
    let item = acquire_item(&app, &owner, "700.00").await;
    let r = app
        .gql(Some(&owner), &format!("mutation($i: ID!) {{ createSale(input: {{lines: [{{itemId: $i, price: {{amount: \"700.00\", currency: \"USD\"}}}}]}}) {{ {SALE_FIELDS} }} }}"), json!({"i": item}))
        .await;
    let id = r["data"]["createSale"]["sale"]["id"].as_str().unwrap().to_owned();
    let r = app
        .gql(
            Some(&owner),
            &format!("mutation($s: ID!) {{ confirmSale(input: {{saleId: $s}}) {{ {SALE_FIELDS} }} }}"),
            json!({"s": id}),
        )
        .await;
    assert_eq!(r["data"]["confirmSale"]["sale"]["invoiceNumber"], 1, "{r}");
    assert_eq!(item_status(&app, &owner, &item).await, "SOLD");
    let sales = app.staff(Role::Sales).await;
    let r = app.gql(Some(&sales), &format!("mutation($s: ID!) {{ cancelSale(input: {{saleId: $s, reason: \"changed mind\"}}) {{ {SALE_FIELDS} }} }}"), json!({"s": id})).await;
    assert_eq!(r["data"]["cancelSale"]["sale"]["status"], "CANCELLED", "{r}");
    assert_eq!(item_status(&app, &owner, &item).await, "IN_STOCK");
    let r = app
        .gql(
            Some(&sales),
            "mutation($s: ID!) { returnSale(input: {saleId: $s}) { errors { code } } }",
            json!({"s": id}),
        )
        .await;
    assert_eq!(code(&r), "FORBIDDEN", "sales staff cannot take money back");
}
