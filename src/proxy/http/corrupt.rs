//! The `corrupt` fault's damage to a buffered response body: pure functions
//! from body to body, so the proxy only has to fix `Content-Length` after.

use bytes::Bytes;
use rand::seq::index;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use crate::proxy::spec::CorruptMode;

/// One byte is flipped per started block of this many bytes...
const FLIP_EVERY: usize = 256;
/// ...but never more than this many: "a few bytes", not noise.
const MAX_FLIPS: usize = 8;

/// One corruption decided for a request, applied once the response arrives.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Corruption {
    /// Keep the first half of the body.
    Truncate,
    /// Flip bits at positions drawn from an RNG seeded with `seed`. The seed
    /// is drawn from the proxy's RNG when the fault fires, so the proxy's
    /// sequence does not depend on body sizes or response timing.
    FlipBytes { seed: u64 },
    /// Set these JSON fields (top-level or dotted paths) to null.
    NullFields(Vec<String>),
}

impl Corruption {
    /// The corruption for `mode`, drawing what it needs from `rng`.
    pub(super) fn new(mode: CorruptMode, fields: &[String], rng: &mut impl Rng) -> Corruption {
        match mode {
            CorruptMode::Truncate => Corruption::Truncate,
            CorruptMode::FlipBytes => Corruption::FlipBytes { seed: rng.gen() },
            CorruptMode::NullFields => Corruption::NullFields(fields.to_vec()),
        }
    }

    /// The damaged body. Bodies a corruption cannot apply to (an empty body,
    /// a non-JSON body for `NullFields`) come back unchanged.
    pub(super) fn apply(&self, body: Bytes) -> Bytes {
        match self {
            Corruption::Truncate => body.slice(..body.len() / 2),
            Corruption::FlipBytes { seed } => flip_bytes(&body, *seed),
            Corruption::NullFields(fields) => null_fields(&body, fields).map_or(body, Bytes::from),
        }
    }
}

/// XORs a few distinct bytes with a random non-zero mask: the length is
/// unchanged and every chosen byte really changes.
fn flip_bytes(body: &Bytes, seed: u64) -> Bytes {
    if body.is_empty() {
        return body.clone();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let count = body.len().div_ceil(FLIP_EVERY).min(MAX_FLIPS);
    let mut out = body.to_vec();
    for at in index::sample(&mut rng, out.len(), count) {
        out[at] ^= rng.gen_range(1..=u8::MAX);
    }
    Bytes::from(out)
}

/// The JSON `body` with every field in `fields` set to null, re-serialised;
/// `None` when the body is not JSON or no listed field exists in it.
///
/// A field is a top-level key (`email`) or a dotted path (`payment.email`).
/// A numeric segment indexes an array (`items.0.price`); any other segment
/// meeting an array applies to each element (`items.price` nulls the price
/// of every item). Missing fields are not added: a missing field and a null
/// one are different faults.
pub(super) fn null_fields(body: &[u8], fields: &[String]) -> Option<Vec<u8>> {
    let mut json: Value = serde_json::from_slice(body).ok()?;
    let mut changed = false;
    for field in fields {
        let path: Vec<&str> = field.split('.').collect();
        changed |= null_path(&mut json, &path);
    }
    // Serialising a `Value` cannot fail (its keys are strings).
    changed.then(|| serde_json::to_vec(&json).ok()).flatten()
}

/// Sets the value at `path` under `value` to null; whether anything changed.
fn null_path(value: &mut Value, path: &[&str]) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    match value {
        Value::Object(map) => match map.get_mut(*first) {
            Some(child) if rest.is_empty() => {
                let was_null = child.is_null();
                *child = Value::Null;
                !was_null
            }
            Some(child) => null_path(child, rest),
            None => false,
        },
        Value::Array(items) => match first.parse::<usize>() {
            Ok(i) if rest.is_empty() => items.get_mut(i).is_some_and(|item| {
                let was_null = item.is_null();
                *item = Value::Null;
                !was_null
            }),
            Ok(i) => items.get_mut(i).is_some_and(|item| null_path(item, rest)),
            // `|` not `||`: every element must be visited.
            Err(_) => items
                .iter_mut()
                .fold(false, |changed, item| null_path(item, path) | changed),
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nulled(body: Value, fields: &[&str]) -> Option<Value> {
        let fields: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
        let out = null_fields(body.to_string().as_bytes(), &fields)?;
        Some(serde_json::from_slice(&out).expect("output is JSON"))
    }

    #[test]
    fn null_fields_cases() {
        let order = json!({"id": 7, "email": "a@b.c", "payment": {"email": "p@b.c", "amount": 12},
                           "items": [{"sku": "x", "price": 3}, {"sku": "y", "price": 4}]});
        // (case, fields, JSON pointers that must become null; `None`: body untouched)
        type Case = (
            &'static str,
            &'static [&'static str],
            Option<&'static [&'static str]>,
        );
        let cases: [Case; 8] = [
            (
                "a top-level field is set to null",
                &["email"],
                Some(&["/email"]),
            ),
            (
                "a dotted path reaches into a nested object only",
                &["payment.email"],
                Some(&["/payment/email"]),
            ),
            (
                "several fields are all nulled",
                &["id", "payment.amount"],
                Some(&["/id", "/payment/amount"]),
            ),
            (
                "a whole object can be nulled",
                &["payment"],
                Some(&["/payment"]),
            ),
            (
                "a numeric segment indexes an array",
                &["items.1.price"],
                Some(&["/items/1/price"]),
            ),
            (
                "a name meeting an array applies to every element",
                &["items.price"],
                Some(&["/items/0/price", "/items/1/price"]),
            ),
            (
                "a missing field leaves the body untouched",
                &["phone"],
                None,
            ),
            (
                "a path through a scalar leaves the body untouched",
                &["email.domain"],
                None,
            ),
        ];
        for (case, fields, pointers) in cases {
            let want = pointers.map(|pointers| {
                let mut want = order.clone();
                for pointer in pointers {
                    *want.pointer_mut(pointer).expect("pointer exists") = Value::Null;
                }
                want
            });
            // Everything not listed stays as it was.
            assert_eq!(nulled(order.clone(), fields), want, "{case}");
        }
    }

    #[test]
    fn a_top_level_array_body_has_the_field_nulled_in_every_element() {
        assert_eq!(
            nulled(json!([{"email": "a"}, {"email": "b"}, 3]), &["email"]),
            Some(json!([{"email": null}, {"email": null}, 3]))
        );
    }

    #[test]
    fn a_non_json_body_passes_through_unchanged() {
        let body = Bytes::from_static(b"<html>email</html>");
        let corruption = Corruption::NullFields(vec!["email".into()]);
        assert_eq!(corruption.apply(body.clone()), body);
    }

    #[test]
    fn truncate_keeps_the_first_half() {
        let cases: [(&[u8], &[u8]); 4] = [
            (b"0123456789", b"01234"),
            (b"abc", b"a"),
            (b"a", b""),
            (b"", b""),
        ];
        for (body, want) in cases {
            assert_eq!(
                Corruption::Truncate.apply(Bytes::copy_from_slice(body)),
                want
            );
        }
    }

    #[test]
    fn flip_bytes_changes_a_few_bytes_and_keeps_the_length() {
        let body = Bytes::from(vec![b'a'; 1000]);
        let out = Corruption::FlipBytes { seed: 3 }.apply(body.clone());
        assert_eq!(out.len(), body.len());
        let changed = body.iter().zip(out.iter()).filter(|(a, b)| a != b).count();
        assert_eq!(changed, 4, "one per started 256 bytes");
        let huge = Bytes::from(vec![0u8; 1 << 20]);
        let out = Corruption::FlipBytes { seed: 3 }.apply(huge.clone());
        assert_eq!(
            huge.iter().zip(out.iter()).filter(|(a, b)| a != b).count(),
            MAX_FLIPS
        );
        let one = Corruption::FlipBytes { seed: 9 }.apply(Bytes::from_static(b"x"));
        assert_ne!(one, Bytes::from_static(b"x"));
        assert!(Corruption::FlipBytes { seed: 1 }
            .apply(Bytes::new())
            .is_empty());
    }

    #[test]
    fn flip_bytes_is_reproducible_from_its_seed() {
        let body = Bytes::from_static(b"{\"status\": \"paid\", \"amount\": 12}");
        let flip = |seed| Corruption::FlipBytes { seed }.apply(body.clone());
        assert_eq!(flip(5), flip(5));
        assert_ne!(flip(5), flip(6));
    }
}
