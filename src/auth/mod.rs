//! Who a client is. Every identity source (policy-file users, JWTs, OAuth2
//! introspection, LDAP, a users table, a script) ends in one [`Identity`];
//! the session turns it into effective roles and globals the same way
//! whichever source signed the user in.
//!
//! Must never: let a name that no source vouched for reach a session, or
//! turn a role name a source lists into a policy-file user's grants (a
//! source's roles are held as roles only); a guest never holds the grants
//! of a policy-file user of the same name.

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
