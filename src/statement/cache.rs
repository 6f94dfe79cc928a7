//! The rewrite cache, shared by all sessions: the SQL pgward forwards for a
//! statement text depends only on the text, the parameter types a Parse
//! message declares for it, the session's search_path, the catalog
//! generation and the session's policy context (login, roles and global
//! values), so sessions with the same context share entries.
//! Prepared statements are rewritten once, at Parse, anyway.
//!
//! Bounded: past `capacity` entries the cache is emptied and refills with
//! what is in use.

use std::sync::Arc;

use dashmap::DashMap;

use super::hook::Shape;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub context: Arc<str>,
    pub generation: u64,
    pub search_path: Arc<[String]>,
    pub single: bool,
    pub sql: Box<[u8]>,
    /// The parameter type oids a Parse message declares (0: unspecified):
    /// they decide whether a secured relation is fenced.
    pub parameter_types: Box<[u32]>,
}

/// What the cache keeps for a statement text.
#[derive(Debug)]
pub struct CachedRewrite {
    pub sql: Vec<u8>,
    pub search_path: Option<Option<Vec<String>>>,
    /// The statements whose result the forwarder reshapes, by position
    /// (see [`super::hook::Hook::shapes`]): a cached write or SHOW is
    /// shaped as a fresh one.
    pub shapes: Vec<(usize, Shape)>,
}

pub struct RewriteCache {
    entries: DashMap<CacheKey, Arc<CachedRewrite>>,
    capacity: usize,
}

impl RewriteCache {
    pub fn new(capacity: usize) -> RewriteCache {
        RewriteCache {
            entries: DashMap::new(),
            capacity,
        }
    }

    pub fn get(&self, key: &CacheKey) -> Option<Arc<CachedRewrite>> {
        self.entries.get(key).map(|e| e.value().clone())
    }

    pub fn insert(&self, key: CacheKey, value: Arc<CachedRewrite>) {
        if self.entries.len() >= self.capacity {
            self.entries.clear();
        }
        self.entries.insert(key, value);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(sql: &str, context: &str) -> CacheKey {
        CacheKey {
            context: Arc::from(context),
            generation: 1,
            search_path: Arc::from(vec!["public".to_string()]),
            single: false,
            sql: sql.as_bytes().into(),
            parameter_types: Box::default(),
        }
    }

    #[test]
    fn contexts_do_not_share_entries() {
        let c = RewriteCache::new(10);
        c.insert(
            key("SELECT 1", "alice"),
            Arc::new(CachedRewrite {
                sql: b"x".to_vec(),
                search_path: None,
                shapes: Vec::new(),
            }),
        );
        assert!(c.get(&key("SELECT 1", "alice")).is_some());
        assert!(c.get(&key("SELECT 1", "bob")).is_none());
    }

    #[test]
    fn declared_parameter_types_do_not_share_entries() {
        let c = RewriteCache::new(10);
        let typed = |types: &[u32]| CacheKey {
            single: true,
            parameter_types: types.into(),
            ..key("SELECT * FROM t WHERE id = $1", "alice")
        };
        c.insert(
            typed(&[1700]),
            Arc::new(CachedRewrite {
                sql: b"fenced".to_vec(),
                search_path: None,
                shapes: Vec::new(),
            }),
        );
        assert_eq!(c.get(&typed(&[1700])).unwrap().sql, b"fenced");
        assert!(c.get(&typed(&[23])).is_none());
        assert!(c.get(&typed(&[])).is_none());
        assert!(c.get(&typed(&[0])).is_none());
    }

    #[test]
    fn stays_bounded() {
        let c = RewriteCache::new(3);
        for i in 0..10 {
            c.insert(
                key(&format!("SELECT {i}"), "a"),
                Arc::new(CachedRewrite {
                    sql: Vec::new(),
                    search_path: None,
                    shapes: Vec::new(),
                }),
            );
            assert!(c.len() <= 3);
        }
    }
}
