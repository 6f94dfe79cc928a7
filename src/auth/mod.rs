pub mod scram;
pub mod ldap;
