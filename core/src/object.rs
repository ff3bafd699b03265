//! Types that read only from a map.
//!
//! serde's derived structs and internally tagged enums also read a sequence
//! positionally: the JSON `[]` is a `Settings` with every field defaulted, and
//! `["update_settings", {...}, {...}]` is a change. Values of this crate that
//! arrive from outside (request bodies, plan files) are documented as objects,
//! so those types refuse anything else. `map_only!` gives a type whose derive
//! carries `#[serde(remote = "Self")]` the `Serialize` and `Deserialize` impls
//! that go through the derived code, the latter only from a map.

/// Implements `Serialize` and a map-only `Deserialize` for a type whose
/// derives carry `#[serde(remote = "Self")]`.
#[macro_export]
macro_rules! map_only {
    ($ty:ty, $expecting:literal) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                <$ty>::serialize(self, serializer)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct MapOnly;
                impl<'de> serde::de::Visitor<'de> for MapOnly {
                    type Value = $ty;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        map: A,
                    ) -> Result<$ty, A::Error> {
                        <$ty>::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    }
                }
                deserializer.deserialize_map(MapOnly)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failure is the report

    use crate::model::CustomRole;
    use crate::{Change, Settings};

    #[test]
    fn objects_read_and_sequences_are_refused() {
        let settings: Settings = serde_json::from_str(r#"{"require_2fa": true}"#).unwrap();
        assert!(settings.require_2fa);
        assert_eq!(
            settings.invitation_ttl_days,
            Settings::DEFAULT_INVITATION_TTL_DAYS
        );
        let role: CustomRole = serde_json::from_str(r#"{"permissions": []}"#).unwrap();
        assert!(role.permissions.is_empty());
        let change = r#"{"op": "rename_team", "from": "A", "to": "B"}"#;
        let change: Change = serde_json::from_str(change).unwrap();
        assert_eq!(serde_json::to_value(&change).unwrap()["op"], "rename_team");

        let error = serde_json::from_str::<Settings>("[]").unwrap_err();
        assert!(error.to_string().contains("settings object"), "{error}");
        assert!(serde_json::from_str::<CustomRole>(r#"["", []]"#).is_err());
        assert!(serde_json::from_str::<Change>(r#"["rename_team", "A", "B"]"#).is_err());
        let nested = r#"{"op": "update_settings", "from": [], "to": {}}"#;
        assert!(serde_json::from_str::<Change>(nested).is_err());
    }
}
