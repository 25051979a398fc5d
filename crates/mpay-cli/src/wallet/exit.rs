//! How a wallet command fails: a message for the person and an exit code
//! for scripts, chosen by the kind of [`WalletError`]. No failure carries a
//! PIN, a token or a key.

use mpay_wallet::WalletError;

/// The exit codes (documented in [`super::EXIT_CODES_HELP`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Other,
    WrongPin,
    InsufficientFunds,
    NoBuyerNearby,
    Refused,
    LimitExceeded,
    OfficeUnreachable,
    DoubleSpend,
    Timeout,
    SeveralBuyers,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Other => 1,
            Exit::WrongPin => 3,
            Exit::InsufficientFunds => 4,
            Exit::NoBuyerNearby => 5,
            Exit::Refused => 6,
            Exit::LimitExceeded => 7,
            Exit::OfficeUnreachable => 8,
            Exit::DoubleSpend => 9,
            Exit::Timeout => 10,
            Exit::SeveralBuyers => 11,
        }
    }

    /// The name in `--json` output.
    pub fn name(self) -> &'static str {
        match self {
            Exit::Other => "error",
            Exit::WrongPin => "wrong_pin",
            Exit::InsufficientFunds => "insufficient_funds",
            Exit::NoBuyerNearby => "no_buyer_nearby",
            Exit::Refused => "refused",
            Exit::LimitExceeded => "limit_exceeded",
            Exit::OfficeUnreachable => "office_unreachable",
            Exit::DoubleSpend => "double_spend",
            Exit::Timeout => "timeout",
            Exit::SeveralBuyers => "several_buyers",
        }
    }
}

/// A failed command.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
    /// Extra fields for `--json` (e.g. the buyers nearby).
    pub details: Option<serde_json::Value>,
}

impl Failure {
    pub fn new(exit: Exit, message: impl Into<String>) -> Failure {
        Failure {
            exit,
            message: message.into(),
            details: None,
        }
    }

    pub fn other(message: impl Into<String>) -> Failure {
        Failure::new(Exit::Other, message)
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Failure {
        self.details = Some(details);
        self
    }
}

/// A library error: its kind is the exit code, its message the text.
impl From<WalletError> for Failure {
    fn from(e: WalletError) -> Failure {
        let exit = match &e {
            WalletError::WrongPin(_) => Exit::WrongPin,
            WalletError::InsufficientFunds(_) => Exit::InsufficientFunds,
            WalletError::NoBuyerNearby(_) => Exit::NoBuyerNearby,
            WalletError::Refused(_) => Exit::Refused,
            WalletError::LimitExceeded(_) => Exit::LimitExceeded,
            WalletError::OfficeUnreachable(_) => Exit::OfficeUnreachable,
            WalletError::DoubleSpend(_) => Exit::DoubleSpend,
            WalletError::Timeout(_) => Exit::Timeout,
            WalletError::SeveralBuyers { .. } => Exit::SeveralBuyers,
            WalletError::Cancelled(_) | WalletError::Other(_) => Exit::Other,
        };
        let failure = Failure::new(exit, e.message());
        match &e {
            WalletError::SeveralBuyers { buyers, .. } => {
                let list: Vec<String> = buyers.iter().map(|b| b.to_hex()).collect();
                failure.with_details(serde_json::json!({ "buyers": list }))
            }
            _ => failure,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_error_has_its_exit_code() {
        let code = |e: WalletError| Failure::from(e).exit.code();
        assert_eq!(code(WalletError::WrongPin("x".into())), 3);
        assert_eq!(code(WalletError::InsufficientFunds("x".into())), 4);
        assert_eq!(code(WalletError::NoBuyerNearby("x".into())), 5);
        assert_eq!(code(WalletError::Refused("x".into())), 6);
        assert_eq!(code(WalletError::LimitExceeded("x".into())), 7);
        assert_eq!(code(WalletError::OfficeUnreachable("x".into())), 8);
        assert_eq!(code(WalletError::DoubleSpend("x".into())), 9);
        assert_eq!(code(WalletError::Timeout("x".into())), 10);
        assert_eq!(code(WalletError::several_buyers(&[])), 11);
        assert_eq!(code(WalletError::Other("x".into())), 1);
        let buyer = mpay_identity::PartyId::from_u64(7);
        let failure = Failure::from(WalletError::several_buyers(&[buyer]));
        assert_eq!(
            failure.details,
            Some(serde_json::json!({ "buyers": [buyer.to_hex()] }))
        );
    }

    #[test]
    fn several_buyers_have_their_own_exit_code() {
        let codes: Vec<u8> = [
            Exit::Other,
            Exit::WrongPin,
            Exit::InsufficientFunds,
            Exit::NoBuyerNearby,
            Exit::Refused,
            Exit::LimitExceeded,
            Exit::OfficeUnreachable,
            Exit::DoubleSpend,
            Exit::Timeout,
            Exit::SeveralBuyers,
        ]
        .iter()
        .map(|e| e.code())
        .collect();
        let mut distinct = codes.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), codes.len(), "{codes:?}");
        assert_eq!(Exit::SeveralBuyers.code(), 11);
        assert!(super::super::EXIT_CODES_HELP.contains("\n  11  several buyers nearby"));
    }
}
