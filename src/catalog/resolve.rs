//! Name resolution as PostgreSQL does it for a given search_path
//! (`namespace.c`: `RelnameGetRelid`, `FuncnameGetCandidates`,
//! `TypenameGetTypid`): a qualified name looks in its schema only; an
//! unqualified one walks the search path, with `pg_catalog` searched first
//! unless the path lists it explicitly. Temporary schemas are not part of a
//! snapshot, so `pg_temp` in a path is skipped.

use super::model::{Function, Relation, Type};
use super::snapshot::{Catalog, SchemaIndex};

/// The schemas an unqualified name is looked up in, in order. `search_path`
/// is already expanded by the caller (`$user` replaced or removed).
pub fn effective_search_path(search_path: &[String]) -> impl Iterator<Item = &str> {
    let explicit_catalog = search_path.iter().any(|s| s == "pg_catalog");
    std::iter::once("pg_catalog")
        .filter(move |_| !explicit_catalog)
        .chain(
            search_path
                .iter()
                .map(String::as_str)
                .filter(|s| !is_temp_schema(s)),
        )
}

fn is_temp_schema(name: &str) -> bool {
    name == "pg_temp" || name.starts_with("pg_temp_")
}

impl Catalog {
    /// The schemas to look in: the named one, or the effective search path.
    fn lookup_schemas<'a>(
        &'a self,
        schema: Option<&'a str>,
        search_path: &'a [String],
    ) -> impl Iterator<Item = &'a SchemaIndex> {
        let path: Box<dyn Iterator<Item = &'a str>> = match schema {
            Some(s) => Box::new(std::iter::once(s)),
            None => Box::new(effective_search_path(search_path)),
        };
        path.filter_map(|s| self.schemas.get(s))
    }

    /// The relation a (possibly qualified) name denotes: the named schema,
    /// or the first schema of the search path that has it.
    pub fn resolve_relation(
        &self,
        schema: Option<&str>,
        name: &str,
        search_path: &[String],
    ) -> Option<&Relation> {
        self.lookup_schemas(schema, search_path)
            .find_map(|s| s.relations.get(name))
            .map(|&i| &self.relations[i])
    }

    /// All overloads of `name` in the first schema (named, or along the
    /// search path with `pg_catalog` first) that has any, in oid order.
    ///
    /// PostgreSQL itself also considers overloads in later schemas whose
    /// argument types differ; see [`Catalog::function_candidates`].
    pub fn resolve_function(
        &self,
        schema: Option<&str>,
        name: &str,
        search_path: &[String],
    ) -> Vec<&Function> {
        self.lookup_schemas(schema, search_path)
            .find_map(|s| s.functions.get(name))
            .map(|ix| ix.iter().map(|&i| &self.functions[i]).collect())
            .unwrap_or_default()
    }

    /// The candidates PostgreSQL's overload resolution starts from: every
    /// function of that name in the schemas searched, except those hidden by
    /// one with the same argument types in an earlier schema.
    pub fn function_candidates(
        &self,
        schema: Option<&str>,
        name: &str,
        search_path: &[String],
    ) -> Vec<&Function> {
        let mut found: Vec<&Function> = Vec::new();
        for s in self.lookup_schemas(schema, search_path) {
            let Some(ix) = s.functions.get(name) else {
                continue;
            };
            let before = found.len();
            for &i in ix {
                let f = &self.functions[i];
                if !found[..before].iter().any(|g| g.arg_types == f.arg_types) {
                    found.push(f);
                }
            }
        }
        found
    }

    /// The type a (possibly qualified) name denotes, by its `pg_type` name
    /// (`int4`, `_text`; SQL spellings such as `integer` are the caller's).
    pub fn resolve_type(
        &self,
        schema: Option<&str>,
        name: &str,
        search_path: &[String],
    ) -> Option<&Type> {
        self.lookup_schemas(schema, search_path)
            .find_map(|s| s.types.get(name))
            .map(|&i| &self.types[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{CatalogParts, Column, Operator, RelKind};

    fn relation(oid: u32, schema: &str, name: &str) -> Relation {
        Relation {
            oid,
            schema: schema.into(),
            name: name.into(),
            kind: RelKind::Table,
            columns: vec![Column {
                name: "id".into(),
                attnum: 1,
                type_oid: 23,
                type_name: "integer".into(),
                not_null: true,
            }],
            primary_key: vec!["id".into()],
            parent: None,
            is_partition: false,
        }
    }

    fn function(oid: u32, schema: &str, name: &str, args: &[u32]) -> Function {
        Function {
            oid,
            schema: schema.into(),
            name: name.into(),
            arg_types: args.to_vec(),
            return_type: 25,
            kind: 'f',
            volatility: 'i',
            leakproof: false,
            security_definer: false,
            returns_set: false,
        }
    }

    fn ty(oid: u32, schema: &str, name: &str) -> Type {
        Type {
            oid,
            schema: schema.into(),
            name: name.into(),
            category: 'U',
            element: 0,
            array_type: 0,
        }
    }

    fn operator(oid: u32, name: &str, left: u32, right: u32, leakproof: bool) -> Operator {
        Operator {
            oid,
            name: name.into(),
            left,
            right,
            result: 16,
            function: oid + 1000,
            leakproof,
        }
    }

    fn path(schemas: &[&str]) -> Vec<String> {
        schemas.iter().map(|s| s.to_string()).collect()
    }

    fn catalog() -> Catalog {
        Catalog::from_parts(CatalogParts {
            schemas: path(&["pg_catalog", "public", "sales", "empty"]),
            relations: vec![
                relation(1, "pg_catalog", "pg_class"),
                relation(2, "public", "orders"),
                relation(3, "sales", "orders"),
                relation(4, "sales", "regions"),
                relation(5, "public", "pg_class"),
                relation(6, "public", "Mixed"),
            ],
            functions: vec![
                function(10, "pg_catalog", "lower", &[25]),
                function(11, "pg_catalog", "lower", &[3904]),
                function(12, "public", "lower", &[1043]),
                function(13, "public", "lower", &[25]),
                function(21, "sales", "total", &[23, 23]),
                function(20, "sales", "total", &[23]),
                function(22, "public", "total", &[]),
            ],
            operators: vec![
                operator(96, "=", 23, 23, true),
                operator(1752, "=", 1700, 1700, false),
                operator(97, "=", 23, 23, false),
                operator(30, "-", 0, 23, true),
            ],
            types: vec![
                ty(23, "pg_catalog", "int4"),
                ty(1007, "pg_catalog", "_int4"),
                ty(500, "public", "money2"),
                ty(501, "sales", "money2"),
                ty(502, "public", "int4"),
            ],
        })
    }

    #[test]
    fn pg_catalog_is_searched_first_unless_listed() {
        let p = path(&["public"]);
        assert_eq!(
            effective_search_path(&p).collect::<Vec<_>>(),
            ["pg_catalog", "public"]
        );
        let p = path(&["public", "pg_catalog", "sales"]);
        assert_eq!(
            effective_search_path(&p).collect::<Vec<_>>(),
            ["public", "pg_catalog", "sales"]
        );
        let p = path(&["pg_temp", "public", "pg_temp_3"]);
        assert_eq!(
            effective_search_path(&p).collect::<Vec<_>>(),
            ["pg_catalog", "public"]
        );
        assert_eq!(
            effective_search_path(&[]).collect::<Vec<_>>(),
            ["pg_catalog"]
        );
    }

    #[test]
    fn relations_follow_the_search_path() {
        let c = catalog();
        let oid = |schema: Option<&str>, name: &str, p: &[&str]| {
            c.resolve_relation(schema, name, &path(p)).map(|r| r.oid)
        };
        assert_eq!(oid(None, "orders", &["public", "sales"]), Some(2));
        assert_eq!(oid(None, "orders", &["sales", "public"]), Some(3));
        assert_eq!(oid(None, "orders", &["empty", "missing", "sales"]), Some(3));
        assert_eq!(oid(None, "regions", &["public", "sales"]), Some(4));
        assert_eq!(oid(None, "regions", &["public"]), None);
        assert_eq!(oid(None, "orders", &[]), None);
    }

    #[test]
    fn pg_catalog_shadows_unless_placed_later() {
        let c = catalog();
        let oid = |p: &[&str]| {
            c.resolve_relation(None, "pg_class", &path(p))
                .map(|r| r.oid)
        };
        assert_eq!(oid(&["public"]), Some(1));
        assert_eq!(oid(&["public", "pg_catalog"]), Some(5));
        assert_eq!(oid(&["pg_temp", "public", "pg_catalog"]), Some(5));
    }

    #[test]
    fn qualified_names_ignore_the_search_path() {
        let c = catalog();
        let p = path(&["public"]);
        assert_eq!(
            c.resolve_relation(Some("sales"), "orders", &p)
                .map(|r| r.oid),
            Some(3)
        );
        assert_eq!(
            c.resolve_relation(Some("public"), "pg_class", &p)
                .map(|r| r.oid),
            Some(5)
        );
        assert!(c.resolve_relation(Some("sales"), "pg_class", &p).is_none());
        assert!(c.resolve_relation(Some("nope"), "orders", &p).is_none());
        assert!(c.resolve_relation(Some("pg_temp"), "orders", &p).is_none());
    }

    #[test]
    fn names_are_case_sensitive() {
        let c = catalog();
        let p = path(&["public"]);
        assert_eq!(
            c.resolve_relation(None, "Mixed", &p).map(|r| r.oid),
            Some(6)
        );
        assert!(c.resolve_relation(None, "mixed", &p).is_none());
        assert!(c.resolve_relation(None, "ORDERS", &p).is_none());
    }

    #[test]
    fn by_oid() {
        let c = catalog();
        assert_eq!(
            c.relation_by_oid(4).map(|r| r.name.as_str()),
            Some("regions")
        );
        assert!(c.relation_by_oid(99).is_none());
        assert_eq!(
            c.function_by_oid(22).map(|f| f.schema.as_str()),
            Some("public")
        );
        assert_eq!(c.type_by_oid(1007).map(|t| t.name.as_str()), Some("_int4"));
    }

    #[test]
    fn functions_come_from_the_first_schema_that_has_any() {
        let c = catalog();
        let oids = |schema: Option<&str>, name: &str, p: &[&str]| {
            c.resolve_function(schema, name, &path(p))
                .iter()
                .map(|f| f.oid)
                .collect::<Vec<_>>()
        };
        assert_eq!(oids(None, "lower", &["public"]), [10, 11]);
        assert_eq!(oids(None, "lower", &["public", "pg_catalog"]), [12, 13]);
        assert_eq!(oids(Some("public"), "lower", &[]), [12, 13]);
        // Overloads in oid order, whatever order they were given in.
        assert_eq!(oids(None, "total", &["sales", "public"]), [20, 21]);
        assert_eq!(oids(None, "total", &["public", "sales"]), [22]);
        assert!(oids(None, "total", &[]).is_empty());
        assert!(oids(None, "nope", &["public"]).is_empty());
    }

    #[test]
    fn function_candidates_hide_same_signatures_only() {
        let c = catalog();
        let oids = |p: &[&str]| {
            c.function_candidates(None, "lower", &path(p))
                .iter()
                .map(|f| f.oid)
                .collect::<Vec<_>>()
        };
        // pg_catalog.lower(text) hides public.lower(text); lower(varchar) stays.
        assert_eq!(oids(&["public"]), [10, 11, 12]);
        assert_eq!(oids(&["public", "pg_catalog"]), [12, 13, 11]);
        assert_eq!(
            c.function_candidates(Some("public"), "lower", &[])
                .iter()
                .map(|f| f.oid)
                .collect::<Vec<_>>(),
            [12, 13]
        );
    }

    #[test]
    fn types_follow_the_search_path() {
        let c = catalog();
        let oid = |schema: Option<&str>, name: &str, p: &[&str]| {
            c.resolve_type(schema, name, &path(p)).map(|t| t.oid)
        };
        assert_eq!(oid(None, "int4", &["public"]), Some(23));
        assert_eq!(oid(None, "int4", &["public", "pg_catalog"]), Some(502));
        assert_eq!(oid(None, "money2", &["sales", "public"]), Some(501));
        assert_eq!(oid(None, "money2", &["public", "sales"]), Some(500));
        assert_eq!(oid(Some("pg_catalog"), "money2", &["public"]), None);
        assert_eq!(oid(None, "integer", &["public"]), None);
    }

    #[test]
    fn operators_by_name_and_operand_types() {
        let c = catalog();
        let eq = c.operator("=", 23, 23).map(|o| (o.oid, o.leakproof));
        assert_eq!(eq, Some((96, true)), "the first listed wins");
        assert_eq!(
            c.operator("=", 1700, 1700).map(|o| o.leakproof),
            Some(false)
        );
        assert_eq!(c.operator("-", 0, 23).map(|o| o.oid), Some(30));
        assert!(c.operator("=", 23, 1700).is_none());
        assert!(c.operator("<>", 23, 23).is_none());
    }

    #[test]
    fn schemas_include_those_of_listed_objects() {
        let c = Catalog::from_parts(CatalogParts {
            schemas: path(&["public"]),
            relations: vec![relation(1, "extra", "t")],
            ..CatalogParts::default()
        });
        assert_eq!(c.schemas().collect::<Vec<_>>(), ["extra", "public"]);
        assert_eq!(c.generation(), 1);
    }
}
