//! DynamoDB stream records as Lambda receives them, built from store items:
//! what the mailer and the events function read in their moto suites.

use serde_json::{Map, Value, json};
use teamform_functions::store::Item;

/// Plain JSON as a DynamoDB-JSON attribute, as streams carry it.
pub fn typed(v: &Value) -> Value {
    match v {
        Value::String(s) => json!({ "S": s }),
        Value::Number(n) => json!({ "N": n.to_string() }),
        Value::Bool(b) => json!({ "BOOL": b }),
        Value::Null => json!({ "NULL": true }),
        Value::Array(a) => json!({ "L": a.iter().map(typed).collect::<Vec<_>>() }),
        Value::Object(m) => {
            json!({ "M": m.iter().map(|(k, v)| (k.clone(), typed(v))).collect::<Map<_, _>>() })
        }
    }
}

/// One stream record of `item`: `name` is `INSERT`, `MODIFY` or `REMOVE`;
/// `seq` its sequence number.
pub fn record(item: &Item, seq: usize, name: &str) -> Value {
    let mut image: Map<String, Value> = item
        .attrs
        .iter()
        .map(|(k, v)| (k.clone(), typed(v)))
        .collect();
    image.insert("pk".into(), json!({ "S": item.pk }));
    image.insert("sk".into(), json!({ "S": item.sk }));
    json!({
        "eventID": format!("e{seq}"),
        "eventName": name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-11-28T00:00:00.000",
        "dynamodb": {
            "ApproximateCreationDateTime": 1795000000.0,
            "Keys": { "pk": { "S": item.pk }, "sk": { "S": item.sk } },
            "NewImage": image,
            "SequenceNumber": format!("{seq:021}"),
            "SizeBytes": 100,
            "StreamViewType": "NEW_IMAGE"
        }
    })
}
