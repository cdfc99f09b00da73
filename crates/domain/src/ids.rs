//! Identifiers and validated values: each a newtype with a private field and a `parse`.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::DomainError;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $label:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            pub fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }

            /// Parses the textual form of a UUID.
            pub fn parse(s: &str) -> Result<Self, DomainError> {
                Uuid::parse_str(s.trim())
                    .map(Self)
                    .map_err(|_| DomainError::InvalidIdentifier { what: $label, value: s.chars().take(64).collect() })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_id!(
    /// The identity of a dossier, and of its event stream.
    DossierId,
    "numéro de dossier"
);
uuid_id!(
    /// The identity of an exam session, and of its event stream.
    SessionId,
    "session d'examen"
);
uuid_id!(
    /// A reference to the candidate's personal record, kept outside the event payloads so that
    /// personal data can be erased without breaking the hash chain.
    CandidateId,
    "candidat"
);

/// The *code utilisateur* given to a candidate at pre-registration: eight characters from an
/// alphabet without look-alikes (no 0/O, 1/I).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserCode(String);

impl UserCode {
    pub const ALPHABET: &'static [u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    pub const LEN: usize = 8;

    /// Accepts lower case and surrounding spaces, as people type it.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let code = s.trim().to_ascii_uppercase();
        let valid = code.len() == Self::LEN && code.bytes().all(|b| Self::ALPHABET.contains(&b));
        if valid {
            Ok(Self(code))
        } else {
            Err(DomainError::InvalidUserCode)
        }
    }

    /// Builds a code from random bytes drawn by the caller (the domain draws none itself).
    pub fn from_random_bytes(bytes: [u8; Self::LEN]) -> Self {
        let code = bytes.iter().map(|b| Self::ALPHABET[usize::from(*b) % Self::ALPHABET.len()] as char).collect();
        Self(code)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UserCode {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<UserCode> for String {
    fn from(c: UserCode) -> Self {
        c.0
    }
}

impl fmt::Display for UserCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_slug(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && s.len() <= 40
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_'))
}

macro_rules! slug_id {
    ($(#[$doc:meta])* $name:ident, $label:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// A lower-case letter, then up to 39 lower-case letters, digits, `-` or `_`.
            pub fn parse(s: &str) -> Result<Self, DomainError> {
                Self::try_from(s.to_owned())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        /// The one check of a code. Keeps the string it checks: decoding an event allocates the
        /// code once.
        impl TryFrom<String> for $name {
            type Error = DomainError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                if is_slug(&s) {
                    Ok(Self(s))
                } else {
                    Err(DomainError::InvalidIdentifier { what: $label, value: s.chars().take(64).collect() })
                }
            }
        }

        impl From<$name> for String {
            fn from(c: $name) -> Self {
                c.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

slug_id!(
    /// The code of a piece in a session's catalogue, e.g. `dossier-preinscription`.
    PieceCode,
    "code de pièce"
);
slug_id!(
    /// The code of a test (*épreuve*) of a session, e.g. `admissibilite`.
    TestCode,
    "code d'épreuve"
);

/// The SHA-256 of a stored file, as 64 lower-case hexadecimal digits.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256Hex(String);

impl Sha256Hex {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Self(s.to_owned()))
        } else {
            Err(DomainError::InvalidIdentifier { what: "empreinte SHA-256", value: s.chars().take(64).collect() })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Sha256Hex {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Sha256Hex> for String {
    fn from(c: Sha256Hex) -> Self {
        c.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_user_code_is_read_as_people_type_it() {
        assert_eq!(UserCode::parse(" ab3kx9qz ").unwrap().as_str(), "AB3KX9QZ");
    }

    #[test]
    fn look_alike_characters_are_not_part_of_a_user_code() {
        assert_eq!(UserCode::parse("AB0KX9QZ"), Err(DomainError::InvalidUserCode));
        assert_eq!(UserCode::parse("AB1KX9QZ"), Err(DomainError::InvalidUserCode));
        assert_eq!(UserCode::parse("ABKX9QZ"), Err(DomainError::InvalidUserCode));
    }

    #[test]
    fn piece_codes_are_slugs() {
        assert!(PieceCode::parse("dossier-preinscription").is_ok());
        assert!(PieceCode::parse("Dossier").is_err());
        assert!(PieceCode::parse("").is_err());
        assert!(PieceCode::parse("1abc").is_err());
        assert!(PieceCode::parse("a b").is_err());
    }

    proptest! {
        #[test]
        fn every_generated_user_code_parses_back(bytes in any::<[u8; 8]>()) {
            let code = UserCode::from_random_bytes(bytes);
            prop_assert_eq!(UserCode::parse(code.as_str()).unwrap(), code);
        }

        #[test]
        fn parsing_a_user_code_never_panics(s in "\\PC*") {
            let _ = UserCode::parse(&s);
        }

        #[test]
        fn valid_piece_codes_round_trip_through_json(s in "[a-z][a-z0-9_-]{0,39}") {
            let code = PieceCode::parse(&s).unwrap();
            let json = serde_json::to_string(&code).unwrap();
            prop_assert_eq!(serde_json::from_str::<PieceCode>(&json).unwrap(), code);
        }

        #[test]
        fn invalid_piece_codes_are_refused_when_decoding(s in "[A-Z ]{1,10}") {
            let json = serde_json::to_string(&s).unwrap();
            prop_assert!(serde_json::from_str::<PieceCode>(&json).is_err());
        }
    }
}
