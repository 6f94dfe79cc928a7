//! Who a client is. Every identity source (policy-file users, JWTs, OAuth2
//! introspection, LDAP, a users table, a script) ends in one [`Identity`];
//! the session turns it into effective roles and globals the same way
//! whichever source signed the user in.
//!
//! Must never: let a name that no source vouched for reach a session, or
//! give a token's user the grants of a policy-file user or role that merely
//! has the same name (only the roles a source names are held).

pub mod http;
pub mod identity;
pub mod introspection;
pub mod jwt;
pub mod ldap;
pub mod password;
pub mod scram;
pub mod script;
pub mod sources;
pub mod table;
pub mod throttle;

pub use identity::Identity;
pub use sources::Sources;
