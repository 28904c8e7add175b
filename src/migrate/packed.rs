//! Serde for records the run keeps by the hundred thousand (the info of each
//! migrated case, see `run::case_cache`): a struct as a JSON array of its
//! fields in order, since the field names would take more bytes than the
//! values. Only the run reads back what it wrote, so the order is the format.

/// Implements `Serialize` and `Deserialize` for a struct with named fields as
/// a tuple of them: `packed!(Name { a: A, b: B })` lists every field with its
/// type, in the order they are written.
macro_rules! packed {
    ($ty:ident { $($field:ident: $fty:ty),+ $(,)? }) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(
                &self,
                serializer: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                serde::Serialize::serialize(&($(&self.$field,)+), serializer)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(
                deserializer: D,
            ) -> std::result::Result<Self, D::Error> {
                let ($($field,)+): ($($fty,)+) = serde::Deserialize::deserialize(deserializer)?;
                Ok($ty { $($field),+ })
            }
        }
    };
}

pub(crate) use packed;
