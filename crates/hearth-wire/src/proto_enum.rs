//! Proto enums read as Google's JSON mapping reads them: by name, or by
//! number (`enum-encoding=int`, which the legacy `google-generativeai`
//! Python SDK always asks for: `"type": 6` is OBJECT). The numbers are those
//! of `google.ai.generativelanguage.v1beta` (google-ai-generativelanguage
//! 0.12.1's generated `proto.Enum` classes).

/// `impl Deserialize` for an enum from its names and numbers:
/// `proto_enum!(Ty { Variant = 1 => "NAME", ... })`. A variant without a
/// number (`Variant => "NAME"`) is read by name only.
macro_rules! proto_enum {
    ($ty:ident { $($variant:ident $(= $num:literal)? => $name:literal),* $(,)? }) => {
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Names;
                impl serde::de::Visitor<'_> for Names {
                    type Value = $ty;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str(concat!("one of the ", stringify!($ty), " names or numbers"))
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$ty, E> {
                        match v {
                            $($name => Ok($ty::$variant),)*
                            _ => Err(E::unknown_variant(v, &[$($name),*])),
                        }
                    }
                    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<$ty, E> {
                        $($(if v == $num { return Ok($ty::$variant); })?)*
                        Err(E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
                    }
                    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<$ty, E> {
                        match u64::try_from(v) {
                            Ok(u) => self.visit_u64(u),
                            Err(_) => Err(E::invalid_value(serde::de::Unexpected::Signed(v), &self)),
                        }
                    }
                }
                d.deserialize_any(Names)
            }
        }
    };
}

pub(crate) use proto_enum;

#[cfg(test)]
mod tests {
    use crate::{FunctionCallingMode, HarmBlockThreshold, HarmCategory, MediaResolution, Modality};

    fn de<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    #[test]
    fn enums_read_by_name_or_number() {
        use serde_json::json;
        assert_eq!(
            de::<FunctionCallingMode>(json!("ANY")),
            Ok(FunctionCallingMode::Any)
        );
        assert_eq!(
            de::<FunctionCallingMode>(json!(2)),
            Ok(FunctionCallingMode::Any)
        );
        assert_eq!(
            de::<FunctionCallingMode>(json!(3)),
            Ok(FunctionCallingMode::None)
        );
        assert_eq!(
            de::<HarmCategory>(json!(7)),
            Ok(HarmCategory::HarmCategoryHarassment)
        );
        assert_eq!(
            de::<HarmBlockThreshold>(json!(3)),
            Ok(HarmBlockThreshold::BlockOnlyHigh)
        );
        assert_eq!(de::<Modality>(json!(1)), Ok(Modality::Text));
        assert_eq!(de::<Modality>(json!(3)), Ok(Modality::Audio));
        assert_eq!(
            de::<MediaResolution>(json!(1)),
            Ok(MediaResolution::MediaResolutionLow)
        );
        // Unknown numbers and names are errors that say what is accepted.
        let e = de::<FunctionCallingMode>(json!(9)).expect_err("9");
        assert!(e.contains("FunctionCallingMode names or numbers"), "{e}");
        let e = de::<FunctionCallingMode>(json!(-1)).expect_err("-1");
        assert!(e.contains("-1"), "{e}");
        let e = de::<FunctionCallingMode>(json!("SOMETIMES")).expect_err("name");
        assert!(e.contains("unknown variant `SOMETIMES`"), "{e}");
    }
}
