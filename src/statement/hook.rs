//! The per-session statement hook: every Query and Parse text of a session
//! goes through [`Hook::secure`]. Policy-bound sessions get the rewriter
//! (secured, printed and verified SQL); sessions of a BYPASSPOLICY role get
//! their text forwarded as sent, and logged (PRODUCT.md §3 semantics 12).
//!
//! Tracks the client's search_path (semantics 10): names are resolved with
//! it and forwarded schema-qualified, and `SHOW search_path` answers with
//! it, as `SHOW session_authorization`, `is_superuser` and `role` answer
//! for the login (semantics 11). [`Hook::shapes`] tells the forwarder which
//! results to show in another shape than PostgreSQL sends them: tagged
//! `SHOW`, or the results of writes pgward changed ([`ResultShape`]).

use std::sync::Arc;

use crate::catalog::CatalogHandle;
use crate::error::PgError;
use crate::rewrite::{self, Access, Context, ResultShape, WriteTag};
use crate::upstream::control::Control;

use super::Origin;
use super::cache::{CacheKey, CachedRewrite, RewriteCache};

/// How a session's statements are treated.
#[derive(Clone)]
pub enum Mode {
    /// Forwarded as sent (BYPASSPOLICY).
    Bypass,
    /// Rewritten under the session's policies; the key names the policy
    /// context (login, roles, global values) for the rewrite cache.
    Policy {
        access: Arc<dyn Access + Send + Sync>,
        context: Arc<str>,
    },
}

/// What goes upstream for a statement text.
#[derive(Debug, PartialEq, Eq)]
pub enum Forward {
    /// The client's text as sent (a BYPASSPOLICY session).
    AsSent,
    /// The text pgward printed from the secured syntax tree.
    Printed(Vec<u8>),
}

pub struct Hook {
    mode: Mode,
    login: String,
    /// The client's search_path as written (`$user` unexpanded).
    search_path: Vec<String>,
    /// The text the search_path was given as, while it is the one from the
    /// startup packet: PostgreSQL shows that text as written.
    shown_as: Option<String>,
    /// What `RESET search_path`, `RESET ALL` and `DISCARD ALL` return to:
    /// the startup packet's path (its names and text), else the default.
    startup: (Vec<String>, Option<String>),
    catalog: Arc<CatalogHandle>,
    control: Arc<Control>,
    cache: Arc<RewriteCache>,
    /// The statements of the last secured text whose result the forwarder
    /// reshapes, by position, in order.
    shapes: Vec<(usize, Shape)>,
}

/// How the client sees the result of one forwarded statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// A `SHOW` pgward answers with a SELECT: the tag `SELECT 1` becomes
    /// `SHOW`.
    Show,
    /// A write with pgward's own `RETURNING`: no row description, no rows,
    /// the tag as sent ([`ResultShape::Silent`]).
    Silent,
    /// A write wrapped in a SELECT: `SELECT n` becomes the write's tag
    /// ([`ResultShape::Tagged`]).
    Tagged(WriteTag),
    /// A write wrapped in a SELECT whose rows are pgward's: no row
    /// description, no rows, `SELECT n` becomes the write's tag
    /// ([`ResultShape::Counted`]).
    Counted(WriteTag),
}

impl Shape {
    /// The client gets no row description and no rows.
    pub fn rowless(self) -> bool {
        matches!(self, Shape::Silent | Shape::Counted(_))
    }
}

impl From<ResultShape> for Shape {
    fn from(shape: ResultShape) -> Shape {
        match shape {
            ResultShape::Silent => Shape::Silent,
            ResultShape::Tagged(tag) => Shape::Tagged(tag),
            ResultShape::Counted(tag) => Shape::Counted(tag),
        }
    }
}

/// The shapes of a secured text, by position.
fn shapes_of(secured: &rewrite::Secured) -> Vec<(usize, Shape)> {
    let mut shapes: Vec<(usize, Shape)> = secured
        .shows
        .iter()
        .map(|&i| (i, Shape::Show))
        .chain(secured.shapes.iter().map(|&(i, s)| (i, Shape::from(s))))
        .collect();
    shapes.sort_by_key(|&(i, _)| i);
    shapes
}

use crate::rewrite::set::default_search_path;

impl Hook {
    /// `search_path`: the startup packet's value, as text (a startup
    /// parameter or `-c search_path=…` in `options`); refused with `22023`,
    /// as PostgreSQL refuses the login, when its list syntax is invalid.
    pub fn new(
        mode: Mode,
        login: &str,
        search_path: Option<&str>,
        catalog: Arc<CatalogHandle>,
        control: Arc<Control>,
        cache: Arc<RewriteCache>,
    ) -> Result<Hook, PgError> {
        let startup = match search_path {
            Some(text) => (
                crate::rewrite::set::parse_search_path_text(text)?,
                Some(text.to_string()),
            ),
            None => (default_search_path(), None),
        };
        Ok(Hook {
            mode,
            login: login.to_string(),
            search_path: startup.0.clone(),
            shown_as: startup.1.clone(),
            startup,
            catalog,
            control,
            cache,
            shapes: Vec::new(),
        })
    }

    /// Whether the statement `sql` goes upstream as sent, without a
    /// rewrite: for a BYPASSPOLICY session, which logs it here (the audit
    /// trail, PRODUCT.md §3.12).
    pub fn passes_as_sent(&mut self, sql: &str) -> bool {
        let bypass = matches!(self.mode, Mode::Bypass);
        if bypass {
            self.shapes.clear();
            crate::logging::bypass_statement(&self.login, sql);
        }
        bypass
    }

    /// The statements of the text last passed to [`Hook::secure`] whose
    /// result the client must see in another shape, by position (0 for a
    /// Parse message's statement), in order: those that answer `SHOW
    /// search_path` or an identity setting, and writes pgward changed.
    pub fn shapes(&self) -> &[(usize, Shape)] {
        &self.shapes
    }

    fn apply(&mut self, change: &Option<Option<Vec<String>>>) {
        match change {
            Some(Some(list)) => {
                self.search_path = list.clone();
                self.shown_as = None;
            }
            // A reset returns to the session's default: the startup value.
            Some(None) => (self.search_path, self.shown_as) = self.startup.clone(),
            None => {}
        }
    }

    /// The client's search_path as the rewriter shows it (SHOW,
    /// `current_setting`): the names, or the startup text as written.
    fn client_path(&self) -> Vec<String> {
        match &self.shown_as {
            Some(text) => crate::rewrite::set::path_given_as_text(text),
            None => self.search_path.clone(),
        }
    }

    /// The SQL to forward for a client's text, or the refusal.
    pub async fn secure(&mut self, sql: &[u8], origin: Origin) -> Result<Vec<u8>, PgError> {
        Ok(match self.secure_typed(sql, origin, &[]).await? {
            Forward::AsSent => sql.to_vec(),
            Forward::Printed(printed) => printed,
        })
    }

    /// [`Hook::secure`] for a Parse message's text with the parameter type
    /// oids it declares (0: unspecified), which the rewriter's leak fencing
    /// types `$n` with; they are part of the cache key.
    pub async fn secure_typed(
        &mut self,
        sql: &[u8],
        origin: Origin,
        parameter_types: &[u32],
    ) -> Result<Forward, PgError> {
        let text = std::str::from_utf8(sql).map_err(|_| {
            PgError::error(
                "22021",
                "invalid byte sequence for encoding \"UTF8\" in statement text",
            )
        })?;
        self.shapes.clear();
        let (access, context) = match &self.mode {
            Mode::Bypass => {
                crate::logging::bypass_statement(&self.login, text);
                return Ok(Forward::AsSent);
            }
            Mode::Policy { access, context } => (access.clone(), context.clone()),
        };
        let single = origin == Origin::Parse;
        let key = CacheKey {
            context,
            generation: self.catalog.current().generation(),
            // What the rewrite reads of the path: the names are those of
            // the shown text, when there is one.
            search_path: Arc::from(self.client_path()),
            single,
            sql: sql.into(),
            parameter_types: parameter_types.into(),
        };
        if let Some(hit) = self.cache.get(&key) {
            self.apply(&hit.search_path);
            self.shapes.clone_from(&hit.shapes);
            return Ok(Forward::Printed(hit.sql.clone()));
        }
        let mut refreshed = false;
        loop {
            let catalog = self.catalog.current();
            let catalog_generation = catalog.generation();
            let result = {
                let path = self.expanded_search_path();
                let ctx = Context {
                    catalog: &catalog,
                    search_path: &path,
                    access: access.as_ref(),
                };
                rewrite::secure_text_typed(text, single, &ctx, &self.client_path(), parameter_types)
            };
            match result {
                Ok(secured) => {
                    self.apply(&secured.search_path);
                    let shapes = shapes_of(&secured);
                    self.shapes.clone_from(&shapes);
                    let entry = Arc::new(CachedRewrite {
                        sql: secured.sql.into_bytes(),
                        search_path: secured.search_path,
                        shapes,
                    });
                    // Cached under the generation the rewrite used.
                    let key = CacheKey {
                        generation: catalog_generation,
                        ..key
                    };
                    self.cache.insert(key, entry.clone());
                    return Ok(Forward::Printed(entry.sql.clone()));
                }
                // An unknown name may be a table created since the last
                // snapshot: refresh once, then answer.
                Err(e) if e.code == "42P01" && !refreshed => {
                    refreshed = true;
                    match self.control.client().await {
                        Ok(client) => {
                            if let Err(err) = self.catalog.refresh(&client).await {
                                tracing::warn!("catalog refresh failed: {err}");
                                return Err(e);
                            }
                        }
                        Err(err) => {
                            tracing::warn!("catalog refresh failed: {err}");
                            return Err(e);
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn expanded_search_path(&self) -> Vec<String> {
        crate::rewrite::set::expand_search_path(&self.search_path, &self.login)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_and_write_shapes_merge_in_statement_order() {
        let secured = rewrite::Secured {
            sql: String::new(),
            search_path: None,
            shows: vec![0, 3],
            shapes: vec![
                (1, ResultShape::Silent),
                (2, ResultShape::Tagged(WriteTag::Delete)),
            ],
        };
        assert_eq!(
            shapes_of(&secured),
            vec![
                (0, Shape::Show),
                (1, Shape::Silent),
                (2, Shape::Tagged(WriteTag::Delete)),
                (3, Shape::Show)
            ]
        );
    }
}
