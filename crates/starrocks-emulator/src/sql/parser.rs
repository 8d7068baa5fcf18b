//! A recursive-descent parser for the SQL subset a CDC tool and its tests send (spec §6).

use crate::catalog::{Column, SqlError, TableSchema};
use crate::sql::lexer::{tokenize, Token};
use crate::types::ColumnType;

/// A literal.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    /// NULL.
    Null,
    /// TRUE / FALSE.
    Bool(bool),
    /// A number.
    Num(String),
    /// A string.
    Str(String),
}

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A column reference (qualifier dropped).
    Column(String),
    /// A literal.
    Lit(Lit),
    /// `@@var`.
    SysVar(String),
    /// A function call; `star` for `COUNT(*)`.
    Func {
        /// Lower-cased name.
        name: String,
        /// Arguments.
        args: Vec<Expr>,
        /// `f(*)`.
        star: bool,
    },
    /// Binary operator (`=`, `<`, `and`, `or`, `+`, ...).
    Binary {
        /// Operator text (lower-case for words).
        op: String,
        /// Left side.
        left: Box<Expr>,
        /// Right side.
        right: Box<Expr>,
    },
    /// NOT e.
    Not(Box<Expr>),
    /// -e.
    Neg(Box<Expr>),
    /// e IS [NOT] NULL.
    IsNull(Box<Expr>, bool),
    /// e [NOT] IN (list).
    InList(Box<Expr>, Vec<Expr>, bool),
    /// e [NOT] BETWEEN a AND b.
    Between(Box<Expr>, Box<Expr>, Box<Expr>, bool),
    /// e [NOT] LIKE pattern.
    Like(Box<Expr>, Box<Expr>, bool),
}

/// One item of a SELECT list.
#[derive(Debug, Clone, PartialEq)]
pub enum SelectItem {
    /// `*`.
    Star,
    /// An expression with an optional alias.
    Expr(Expr, Option<String>),
}

/// A SELECT statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    /// The select list.
    pub items: Vec<SelectItem>,
    /// `FROM [db.]table`.
    pub from: Option<(Option<String>, String)>,
    /// WHERE.
    pub filter: Option<Expr>,
    /// ORDER BY (expr, descending).
    pub order: Vec<(Expr, bool)>,
    /// LIMIT.
    pub limit: Option<u64>,
    /// OFFSET.
    pub offset: u64,
}

/// Where ADD COLUMN puts the column.
#[derive(Debug, Clone, PartialEq)]
pub enum Position {
    /// At the end.
    Last,
    /// FIRST.
    First,
    /// AFTER c.
    After(String),
}

/// ALTER TABLE actions.
#[derive(Debug, Clone, PartialEq)]
pub enum AlterAction {
    /// ADD COLUMN (one or several).
    Add(Vec<(Column, bool, Position)>),
    /// DROP COLUMN.
    Drop(String),
    /// MODIFY COLUMN.
    Modify(Column),
}

/// A parsed statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// CREATE DATABASE.
    CreateDatabase(String, bool),
    /// DROP DATABASE.
    DropDatabase(String, bool),
    /// USE db.
    Use(String),
    /// CREATE TABLE; the bool is IF NOT EXISTS; `explicit_null_keys` lists keys declared NULL.
    CreateTable {
        /// Database qualifier.
        db: Option<String>,
        /// Schema.
        schema: TableSchema,
        /// IF NOT EXISTS.
        if_not_exists: bool,
    },
    /// DROP TABLE.
    DropTable(Option<String>, String, bool),
    /// TRUNCATE TABLE.
    Truncate(Option<String>, String),
    /// ALTER TABLE.
    Alter(Option<String>, String, AlterAction),
    /// DESC / SHOW COLUMNS.
    Desc(Option<String>, String),
    /// SHOW DATABASES.
    ShowDatabases,
    /// SHOW TABLES [FROM db].
    ShowTables(Option<String>),
    /// SHOW CREATE TABLE.
    ShowCreateTable(Option<String>, String),
    /// SHOW ALTER TABLE COLUMN [FROM db] [WHERE] [ORDER BY] [LIMIT].
    ShowAlter(Option<String>, Select),
    /// SHOW VARIABLES / other SHOWs answered with an empty set.
    ShowEmpty(Vec<String>),
    /// SELECT.
    Select(Select),
    /// INSERT INTO t [(cols)] VALUES (...), ...
    Insert {
        /// Database qualifier.
        db: Option<String>,
        /// Table.
        table: String,
        /// Column list.
        columns: Option<Vec<String>>,
        /// Rows of expressions.
        rows: Vec<Vec<Expr>>,
    },
    /// Statements acknowledged with OK and no effect (SET, BEGIN, COMMIT, ...).
    Noop,
}

/// Parse one statement (a trailing `;` is allowed).
pub fn parse(sql: &str) -> Result<Statement, SqlError> {
    let tokens = tokenize(sql)?;
    let mut p = Parser { tokens, pos: 0 };
    let stmt = p.statement()?;
    while p.eat_sym(";") {}
    if p.pos < p.tokens.len() {
        return Err(p.error());
    }
    Ok(stmt)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn error(&self) -> SqlError {
        let near = match self.tokens.get(self.pos) {
            None => "end of input".to_string(),
            Some(Token::Ident { text, .. }) => text.clone(),
            Some(Token::Str(s)) => format!("'{s}'"),
            Some(Token::Number(n)) => n.clone(),
            Some(Token::SysVar(v)) => format!("@@{v}"),
            Some(Token::Sym(s)) => s.to_string(),
        };
        SqlError::new(format!(
            "Getting syntax error at line 1, column {}. Detail message: Unexpected input '{near}', the most similar input is {{<EOF>}}.",
            self.pos
        ))
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn peek_kw(&self, kw: &str) -> bool {
        self.peek().is_some_and(|t| t.is_kw(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.peek_kw(kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), SqlError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.error())
        }
    }

    fn eat_sym(&mut self, sym: &str) -> bool {
        if matches!(self.peek(), Some(Token::Sym(s)) if *s == sym) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_sym(&mut self, sym: &str) -> Result<(), SqlError> {
        if self.eat_sym(sym) {
            Ok(())
        } else {
            Err(self.error())
        }
    }

    fn ident(&mut self) -> Result<String, SqlError> {
        match self.peek() {
            Some(Token::Ident { text, .. }) => {
                let text = text.clone();
                self.pos += 1;
                Ok(text)
            }
            _ => Err(self.error()),
        }
    }

    fn string_or_ident(&mut self) -> Result<String, SqlError> {
        match self.peek() {
            Some(Token::Str(s)) => {
                let s = s.clone();
                self.pos += 1;
                Ok(s)
            }
            _ => self.ident(),
        }
    }

    fn if_exists(&mut self) -> Result<bool, SqlError> {
        if self.eat_kw("if") {
            self.expect_kw("exists")?;
            return Ok(true);
        }
        Ok(false)
    }

    fn if_not_exists(&mut self) -> Result<bool, SqlError> {
        if self.eat_kw("if") {
            self.expect_kw("not")?;
            self.expect_kw("exists")?;
            return Ok(true);
        }
        Ok(false)
    }

    /// `[db.]name`.
    fn qualified(&mut self) -> Result<(Option<String>, String), SqlError> {
        let first = self.ident()?;
        if self.eat_sym(".") {
            let second = self.ident()?;
            return Ok((Some(first), second));
        }
        Ok((None, first))
    }

    fn skip_rest(&mut self) {
        self.pos = self.tokens.len();
    }

    fn statement(&mut self) -> Result<Statement, SqlError> {
        let Some(first) = self.peek().cloned() else {
            return Err(SqlError::with_code(1065, "Query was empty"));
        };
        if first.is_kw("select") || matches!(first, Token::Sym("(")) {
            return Ok(Statement::Select(self.select()?));
        }
        if first.is_kw("create") {
            self.pos += 1;
            if self.eat_kw("database") || self.eat_kw("schema") {
                let ine = self.if_not_exists()?;
                let name = self.ident()?;
                self.skip_rest();
                return Ok(Statement::CreateDatabase(name, ine));
            }
            if self.eat_kw("table") {
                return self.create_table();
            }
            return Err(self.error());
        }
        if first.is_kw("drop") {
            self.pos += 1;
            if self.eat_kw("database") || self.eat_kw("schema") {
                let ie = self.if_exists()?;
                let name = self.ident()?;
                self.eat_kw("force");
                return Ok(Statement::DropDatabase(name, ie));
            }
            if self.eat_kw("table") {
                let ie = self.if_exists()?;
                let (db, table) = self.qualified()?;
                self.eat_kw("force");
                return Ok(Statement::DropTable(db, table, ie));
            }
            return Err(self.error());
        }
        if first.is_kw("use") {
            self.pos += 1;
            let name = self.ident()?;
            return Ok(Statement::Use(name));
        }
        if first.is_kw("truncate") {
            self.pos += 1;
            self.eat_kw("table");
            let (db, table) = self.qualified()?;
            return Ok(Statement::Truncate(db, table));
        }
        if first.is_kw("alter") {
            self.pos += 1;
            self.expect_kw("table")?;
            let (db, table) = self.qualified()?;
            let action = self.alter_action()?;
            return Ok(Statement::Alter(db, table, action));
        }
        if first.is_kw("desc") || first.is_kw("describe") {
            self.pos += 1;
            let (db, table) = self.qualified()?;
            self.skip_rest();
            return Ok(Statement::Desc(db, table));
        }
        if first.is_kw("show") {
            self.pos += 1;
            return self.show();
        }
        if first.is_kw("insert") {
            self.pos += 1;
            return self.insert();
        }
        if [
            "set", "begin", "commit", "rollback", "start", "kill", "analyze", "admin",
        ]
        .iter()
        .any(|kw| first.is_kw(kw))
        {
            self.skip_rest();
            return Ok(Statement::Noop);
        }
        Err(self.error())
    }

    fn show(&mut self) -> Result<Statement, SqlError> {
        if self.eat_kw("databases") || self.eat_kw("schemas") {
            self.skip_rest();
            return Ok(Statement::ShowDatabases);
        }
        self.eat_kw("full");
        if self.eat_kw("tables") {
            let db = if self.eat_kw("from") || self.eat_kw("in") {
                Some(self.ident()?)
            } else {
                None
            };
            self.skip_rest();
            return Ok(Statement::ShowTables(db));
        }
        if self.eat_kw("create") {
            self.expect_kw("table")?;
            let (db, table) = self.qualified()?;
            return Ok(Statement::ShowCreateTable(db, table));
        }
        if self.eat_kw("columns") || self.eat_kw("fields") {
            if !(self.eat_kw("from") || self.eat_kw("in")) {
                return Err(self.error());
            }
            let (mut db, table) = self.qualified()?;
            if self.eat_kw("from") || self.eat_kw("in") {
                db = Some(self.ident()?);
            }
            return Ok(Statement::Desc(db, table));
        }
        if self.eat_kw("alter") {
            self.expect_kw("table")?;
            self.expect_kw("column")?;
            let db = if self.eat_kw("from") || self.eat_kw("in") {
                Some(self.ident()?)
            } else {
                None
            };
            let mut select = Select {
                items: vec![SelectItem::Star],
                from: None,
                filter: None,
                order: Vec::new(),
                limit: None,
                offset: 0,
            };
            self.select_tail(&mut select)?;
            return Ok(Statement::ShowAlter(db, select));
        }
        if self.eat_kw("variables") || self.eat_kw("status") || self.eat_kw("warnings") {
            self.skip_rest();
            return Ok(Statement::ShowEmpty(vec![
                "Variable_name".into(),
                "Value".into(),
            ]));
        }
        self.skip_rest();
        Ok(Statement::ShowEmpty(vec!["Value".into()]))
    }

    fn insert(&mut self) -> Result<Statement, SqlError> {
        self.expect_kw("into")?;
        let (db, table) = self.qualified()?;
        let columns = if self.eat_sym("(") {
            let mut names = vec![self.ident()?];
            while self.eat_sym(",") {
                names.push(self.ident()?);
            }
            self.expect_sym(")")?;
            Some(names)
        } else {
            None
        };
        if !(self.eat_kw("values") || self.eat_kw("value")) {
            return Err(self.error());
        }
        let mut rows = Vec::new();
        loop {
            self.expect_sym("(")?;
            let mut row = vec![self.expr()?];
            while self.eat_sym(",") {
                row.push(self.expr()?);
            }
            self.expect_sym(")")?;
            rows.push(row);
            if !self.eat_sym(",") {
                break;
            }
        }
        Ok(Statement::Insert {
            db,
            table,
            columns,
            rows,
        })
    }

    fn alter_action(&mut self) -> Result<AlterAction, SqlError> {
        if self.eat_kw("add") {
            self.expect_kw("column")?;
            if self.eat_sym("(") {
                let mut columns = Vec::new();
                loop {
                    let (column, explicit_null) = self.column_def()?;
                    columns.push((column, explicit_null, Position::Last));
                    if !self.eat_sym(",") {
                        break;
                    }
                }
                self.expect_sym(")")?;
                self.skip_rest();
                return Ok(AlterAction::Add(columns));
            }
            let (column, explicit_null) = self.column_def()?;
            let position = if self.eat_kw("first") {
                Position::First
            } else if self.eat_kw("after") {
                Position::After(self.ident()?)
            } else {
                Position::Last
            };
            self.skip_rest();
            return Ok(AlterAction::Add(vec![(column, explicit_null, position)]));
        }
        if self.eat_kw("drop") {
            self.expect_kw("column")?;
            let name = self.ident()?;
            self.skip_rest();
            return Ok(AlterAction::Drop(name));
        }
        if self.eat_kw("modify") {
            self.expect_kw("column")?;
            let (column, _) = self.column_def()?;
            self.skip_rest();
            return Ok(AlterAction::Modify(column));
        }
        Err(self.error())
    }

    fn number(&mut self) -> Result<u32, SqlError> {
        match self.peek() {
            Some(Token::Number(n)) => {
                let v = n.parse().map_err(|_| self.error())?;
                self.pos += 1;
                Ok(v)
            }
            _ => Err(self.error()),
        }
    }

    fn paren_numbers(&mut self) -> Result<Vec<u32>, SqlError> {
        let mut out = Vec::new();
        if self.eat_sym("(") {
            out.push(self.number()?);
            while self.eat_sym(",") {
                out.push(self.number()?);
            }
            self.expect_sym(")")?;
        }
        Ok(out)
    }

    fn column_type(&mut self) -> Result<ColumnType, SqlError> {
        let name = self.ident()?.to_ascii_lowercase();
        let ty = match name.as_str() {
            "boolean" | "bool" => ColumnType::Boolean,
            "tinyint" => ColumnType::TinyInt,
            "smallint" => ColumnType::SmallInt,
            "int" | "integer" => ColumnType::Int,
            "bigint" => ColumnType::BigInt,
            "largeint" => ColumnType::LargeInt,
            "float" => ColumnType::Float,
            "double" => ColumnType::Double,
            "decimal" | "decimalv2" | "decimalv3" | "decimal32" | "decimal64" | "decimal128"
            | "numeric" => {
                let args = self.paren_numbers()?;
                let precision = args.first().copied().unwrap_or(10);
                let scale = args.get(1).copied().unwrap_or(0);
                if !(1..=38).contains(&precision) || scale > precision {
                    return Err(SqlError::new(format!(
                        "Getting analyzing error. Detail message: DECIMAL's precision should range from 1 to 38, scale from 0 to precision: ({precision},{scale})."
                    )));
                }
                return Ok(ColumnType::Decimal {
                    precision: precision as u8,
                    scale: scale as u8,
                });
            }
            "date" => ColumnType::Date,
            "datetime" | "timestamp" => ColumnType::DateTime,
            "char" => {
                let n = self.paren_numbers()?.first().copied().unwrap_or(1);
                return Ok(ColumnType::Char(n));
            }
            "varchar" => {
                let n = self.paren_numbers()?.first().copied().unwrap_or(1);
                if !(1..=1_048_576).contains(&n) {
                    return Err(SqlError::new(format!(
                        "Getting analyzing error. Detail message: VARCHAR size must be between 1 and 1048576: {n}."
                    )));
                }
                return Ok(ColumnType::Varchar(n));
            }
            "string" | "text" => ColumnType::Varchar(65533),
            "json" | "jsonb" => ColumnType::Json,
            "varbinary" | "binary" => {
                self.paren_numbers()?;
                return Ok(ColumnType::Varbinary);
            }
            "array" => {
                self.expect_sym("<")?;
                let inner = self.column_type()?;
                self.expect_sym(">")?;
                return Ok(ColumnType::Array(Box::new(inner)));
            }
            other => {
                return Err(SqlError::new(format!(
                    "Getting syntax error. Detail message: Unknown type '{other}'."
                )))
            }
        };
        // Display widths like INT(11) are accepted and ignored.
        self.paren_numbers()?;
        Ok(ty)
    }

    /// `name type [NOT NULL|NULL] [DEFAULT x] [COMMENT 'c']`; the bool is "NULL written".
    fn column_def(&mut self) -> Result<(Column, bool), SqlError> {
        let name = self.ident()?;
        let ty = self.column_type()?;
        let mut nullable = true;
        let mut explicit_null = false;
        let mut default = None;
        let mut comment = String::new();
        loop {
            if self.eat_kw("not") {
                self.expect_kw("null")?;
                nullable = false;
            } else if self.eat_kw("null") {
                explicit_null = true;
            } else if self.eat_kw("default") {
                default = match self.peek().cloned() {
                    Some(Token::Str(s)) => {
                        self.pos += 1;
                        Some(s)
                    }
                    Some(Token::Number(n)) => {
                        self.pos += 1;
                        Some(n)
                    }
                    Some(Token::Sym("-")) => {
                        self.pos += 1;
                        let n = self.number()?;
                        Some(format!("-{n}"))
                    }
                    Some(t) if t.is_kw("null") => {
                        self.pos += 1;
                        None
                    }
                    Some(t) if t.is_kw("current_timestamp") => {
                        self.pos += 1;
                        if self.eat_sym("(") {
                            self.expect_sym(")")?;
                        }
                        Some("CURRENT_TIMESTAMP".into())
                    }
                    _ => return Err(self.error()),
                };
            } else if self.eat_kw("comment") {
                comment = self.string_or_ident()?;
            } else if self.eat_kw("auto_increment") || self.eat_kw("key") {
            } else {
                break;
            }
        }
        Ok((
            Column {
                name,
                ty,
                nullable,
                default,
                comment,
            },
            explicit_null,
        ))
    }

    fn ident_list(&mut self) -> Result<Vec<String>, SqlError> {
        self.expect_sym("(")?;
        let mut names = vec![self.ident()?];
        while self.eat_sym(",") {
            names.push(self.ident()?);
        }
        self.expect_sym(")")?;
        Ok(names)
    }

    fn create_table(&mut self) -> Result<Statement, SqlError> {
        let if_not_exists = self.if_not_exists()?;
        let (db, name) = self.qualified()?;
        self.expect_sym("(")?;
        let mut columns = Vec::new();
        let mut explicit_nulls = Vec::new();
        let mut inline_key: Option<Vec<String>> = None;
        loop {
            if self.eat_kw("primary") {
                self.expect_kw("key")?;
                inline_key = Some(self.ident_list()?);
            } else if self.peek_kw("index") {
                // INDEX name (cols) USING BITMAP: ignored.
                while !matches!(
                    self.peek(),
                    Some(Token::Sym(",")) | Some(Token::Sym(")")) | None
                ) {
                    if self.eat_sym("(") {
                        while !self.eat_sym(")") {
                            self.pos += 1;
                            if self.peek().is_none() {
                                return Err(self.error());
                            }
                        }
                    } else {
                        self.pos += 1;
                    }
                }
            } else {
                let (column, explicit_null) = self.column_def()?;
                if explicit_null {
                    explicit_nulls.push(column.name.clone());
                }
                columns.push(column);
            }
            if !self.eat_sym(",") {
                break;
            }
        }
        self.expect_sym(")")?;
        let mut key_names: Option<Vec<String>> = inline_key;
        let mut distributed_by = Vec::new();
        let mut buckets = None;
        let mut properties = Vec::new();
        let mut duplicate_or_other = None;
        while let Some(token) = self.peek().cloned() {
            if token.is_kw("engine") {
                self.pos += 1;
                self.expect_sym("=")?;
                self.ident()?;
            } else if token.is_kw("primary") {
                self.pos += 1;
                self.expect_kw("key")?;
                key_names = Some(self.ident_list()?);
            } else if token.is_kw("duplicate") || token.is_kw("unique") || token.is_kw("aggregate")
            {
                self.pos += 1;
                self.expect_kw("key")?;
                self.ident_list()?;
                duplicate_or_other = Some(token);
            } else if token.is_kw("comment") {
                self.pos += 1;
                self.string_or_ident()?;
            } else if token.is_kw("partition") {
                self.pos += 1;
                self.expect_kw("by")?;
                // Skip the partition clause up to DISTRIBUTED.
                let mut depth = 0i32;
                while let Some(t) = self.peek() {
                    if depth == 0 && t.is_kw("distributed") {
                        break;
                    }
                    match t {
                        Token::Sym("(") => depth += 1,
                        Token::Sym(")") => depth -= 1,
                        _ => {}
                    }
                    self.pos += 1;
                }
            } else if token.is_kw("distributed") {
                self.pos += 1;
                self.expect_kw("by")?;
                if self.eat_kw("hash") {
                    distributed_by = self.ident_list()?;
                } else {
                    self.expect_kw("random")?;
                }
                if self.eat_kw("buckets") {
                    if self.eat_kw("auto") {
                    } else {
                        buckets = Some(self.number()?);
                    }
                }
            } else if token.is_kw("order") {
                self.pos += 1;
                self.expect_kw("by")?;
                self.ident_list()?;
            } else if token.is_kw("properties") {
                self.pos += 1;
                self.expect_sym("(")?;
                loop {
                    if self.eat_sym(")") {
                        break;
                    }
                    let key = self.string_or_ident()?;
                    self.expect_sym("=")?;
                    let value = self.string_or_ident()?;
                    properties.push((key, value));
                    if !self.eat_sym(",") {
                        self.expect_sym(")")?;
                        break;
                    }
                }
            } else if matches!(token, Token::Sym(";")) {
                break;
            } else {
                return Err(self.error());
            }
        }
        if duplicate_or_other.is_some() {
            return Err(SqlError::new(
                "Getting analyzing error. Detail message: The emulator only supports PRIMARY KEY tables.",
            ));
        }
        let Some(key_names) = key_names else {
            return Err(SqlError::new(
                "Getting analyzing error. Detail message: The emulator only supports PRIMARY KEY tables.",
            ));
        };
        for (i, key) in key_names.iter().enumerate() {
            let position = columns
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(key));
            if position != Some(i) {
                return Err(SqlError::new(
                    "Getting analyzing error. Detail message: Key columns should be a ordered prefix of the schema.",
                ));
            }
            if explicit_nulls.iter().any(|n| n.eq_ignore_ascii_case(key)) {
                return Err(SqlError::new(format!(
                    "Getting analyzing error. Detail message: primary key column[{key}] cannot be nullable."
                )));
            }
            columns[i].nullable = false;
        }
        if distributed_by.is_empty() && key_names.is_empty() {
            return Err(self.error());
        }
        Ok(Statement::CreateTable {
            db,
            schema: TableSchema {
                name,
                key_count: key_names.len(),
                columns,
                distributed_by,
                buckets,
                properties,
                schema_version: 0,
            },
            if_not_exists,
        })
    }

    fn select(&mut self) -> Result<Select, SqlError> {
        if self.eat_sym("(") {
            let inner = self.select()?;
            self.expect_sym(")")?;
            return Ok(inner);
        }
        self.expect_kw("select")?;
        self.eat_kw("distinct");
        let mut items = Vec::new();
        loop {
            if self.eat_sym("*") {
                items.push(SelectItem::Star);
            } else {
                let expr = self.expr()?;
                let alias = if self.eat_kw("as") {
                    Some(self.string_or_ident()?)
                } else {
                    match self.peek() {
                        Some(Token::Ident { text, quoted }) if *quoted || !is_reserved(text) => {
                            let a = text.clone();
                            self.pos += 1;
                            Some(a)
                        }
                        Some(Token::Str(s)) => {
                            let a = s.clone();
                            self.pos += 1;
                            Some(a)
                        }
                        _ => None,
                    }
                };
                items.push(SelectItem::Expr(expr, alias));
            }
            if !self.eat_sym(",") {
                break;
            }
        }
        let from = if self.eat_kw("from") {
            Some(self.qualified()?)
        } else {
            None
        };
        let mut select = Select {
            items,
            from,
            filter: None,
            order: Vec::new(),
            limit: None,
            offset: 0,
        };
        self.select_tail(&mut select)?;
        Ok(select)
    }

    fn select_tail(&mut self, select: &mut Select) -> Result<(), SqlError> {
        if self.eat_kw("where") {
            select.filter = Some(self.expr()?);
        }
        if self.eat_kw("order") {
            self.expect_kw("by")?;
            loop {
                let expr = self.expr()?;
                let desc = if self.eat_kw("desc") {
                    true
                } else {
                    self.eat_kw("asc");
                    false
                };
                select.order.push((expr, desc));
                if !self.eat_sym(",") {
                    break;
                }
            }
        }
        if self.eat_kw("limit") {
            let first = u64::from(self.number()?);
            if self.eat_sym(",") {
                select.offset = first;
                select.limit = Some(u64::from(self.number()?));
            } else {
                select.limit = Some(first);
                if self.eat_kw("offset") {
                    select.offset = u64::from(self.number()?);
                }
            }
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Expr, SqlError> {
        let mut left = self.and_expr()?;
        while self.eat_kw("or") || self.eat_sym("||") {
            let right = self.and_expr()?;
            left = binary("or", left, right);
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Expr, SqlError> {
        let mut left = self.not_expr()?;
        while self.eat_kw("and") {
            let right = self.not_expr()?;
            left = binary("and", left, right);
        }
        Ok(left)
    }

    fn not_expr(&mut self) -> Result<Expr, SqlError> {
        if self.eat_kw("not") {
            return Ok(Expr::Not(Box::new(self.not_expr()?)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, SqlError> {
        let left = self.additive()?;
        for op in ["<=", ">=", "!=", "<>", "=", "<", ">"] {
            if self.eat_sym(op) {
                let right = self.additive()?;
                let op = if op == "<>" { "!=" } else { op };
                return Ok(binary(op, left, right));
            }
        }
        if self.eat_kw("is") {
            let negated = self.eat_kw("not");
            self.expect_kw("null")?;
            return Ok(Expr::IsNull(Box::new(left), negated));
        }
        let negated = self.eat_kw("not");
        if self.eat_kw("in") {
            self.expect_sym("(")?;
            let mut list = vec![self.expr()?];
            while self.eat_sym(",") {
                list.push(self.expr()?);
            }
            self.expect_sym(")")?;
            return Ok(Expr::InList(Box::new(left), list, negated));
        }
        if self.eat_kw("between") {
            let low = self.additive()?;
            self.expect_kw("and")?;
            let high = self.additive()?;
            return Ok(Expr::Between(
                Box::new(left),
                Box::new(low),
                Box::new(high),
                negated,
            ));
        }
        if self.eat_kw("like") {
            let pattern = self.additive()?;
            return Ok(Expr::Like(Box::new(left), Box::new(pattern), negated));
        }
        if negated {
            return Err(self.error());
        }
        Ok(left)
    }

    fn additive(&mut self) -> Result<Expr, SqlError> {
        let mut left = self.multiplicative()?;
        loop {
            if self.eat_sym("+") {
                left = binary("+", left, self.multiplicative()?);
            } else if self.eat_sym("-") {
                left = binary("-", left, self.multiplicative()?);
            } else {
                return Ok(left);
            }
        }
    }

    fn multiplicative(&mut self) -> Result<Expr, SqlError> {
        let mut left = self.unary()?;
        loop {
            if self.eat_sym("*") {
                left = binary("*", left, self.unary()?);
            } else if self.eat_sym("/") {
                left = binary("/", left, self.unary()?);
            } else if self.eat_sym("%") {
                left = binary("%", left, self.unary()?);
            } else {
                return Ok(left);
            }
        }
    }

    fn unary(&mut self) -> Result<Expr, SqlError> {
        if self.eat_sym("-") {
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        self.eat_sym("+");
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, SqlError> {
        let Some(token) = self.peek().cloned() else {
            return Err(self.error());
        };
        self.pos += 1;
        match token {
            Token::Number(n) => Ok(Expr::Lit(Lit::Num(n))),
            Token::Str(s) => Ok(Expr::Lit(Lit::Str(s))),
            Token::SysVar(v) => Ok(Expr::SysVar(v.to_ascii_lowercase())),
            Token::Sym("(") => {
                let e = self.expr()?;
                self.expect_sym(")")?;
                Ok(e)
            }
            Token::Ident { text, quoted } => {
                if !quoted && is_reserved(&text) {
                    self.pos -= 1;
                    return Err(self.error());
                }
                if !quoted {
                    if text.eq_ignore_ascii_case("null") {
                        return Ok(Expr::Lit(Lit::Null));
                    }
                    if text.eq_ignore_ascii_case("true") {
                        return Ok(Expr::Lit(Lit::Bool(true)));
                    }
                    if text.eq_ignore_ascii_case("false") {
                        return Ok(Expr::Lit(Lit::Bool(false)));
                    }
                }
                if !quoted && self.eat_sym("(") {
                    let name = text.to_ascii_lowercase();
                    if self.eat_sym("*") {
                        self.expect_sym(")")?;
                        return Ok(Expr::Func {
                            name,
                            args: Vec::new(),
                            star: true,
                        });
                    }
                    let mut args = Vec::new();
                    if !self.eat_sym(")") {
                        self.eat_kw("distinct");
                        args.push(self.expr()?);
                        while self.eat_sym(",") {
                            args.push(self.expr()?);
                        }
                        self.expect_sym(")")?;
                    }
                    return Ok(Expr::Func {
                        name,
                        args,
                        star: false,
                    });
                }
                // Qualified names: keep the last part.
                let mut name = text;
                while self.eat_sym(".") {
                    name = self.ident()?;
                }
                Ok(Expr::Column(name))
            }
            _ => {
                self.pos -= 1;
                Err(self.error())
            }
        }
    }
}

fn binary(op: &str, left: Expr, right: Expr) -> Expr {
    Expr::Binary {
        op: op.to_string(),
        left: Box::new(left),
        right: Box::new(right),
    }
}

fn is_reserved(word: &str) -> bool {
    [
        "from", "where", "order", "limit", "group", "having", "as", "and", "or", "not", "union",
        "offset", "asc", "desc", "into", "join", "on",
    ]
    .iter()
    .any(|kw| kw.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_starrocks_create_table() {
        let sql = r#"CREATE TABLE IF NOT EXISTS db.t (
            id BIGINT NOT NULL COMMENT "pk",
            k2 VARCHAR(64) NOT NULL,
            v1 INT NULL DEFAULT "0",
            v2 DECIMAL(10, 2),
            v3 ARRAY<ARRAY<INT>>
        ) ENGINE=OLAP PRIMARY KEY (id, k2)
        COMMENT "OLAP"
        DISTRIBUTED BY HASH (id) BUCKETS 4
        PROPERTIES ("replication_num" = "1", "enable_persistent_index" = "true");"#;
        let Statement::CreateTable {
            db,
            schema,
            if_not_exists,
        } = parse(sql).unwrap()
        else {
            panic!("not a create table");
        };
        assert_eq!(db.as_deref(), Some("db"));
        assert!(if_not_exists);
        assert_eq!(schema.key_count, 2);
        assert_eq!(schema.columns[2].default.as_deref(), Some("0"));
        assert_eq!(schema.buckets, Some(4));
        assert_eq!(schema.properties.len(), 2);
        assert_eq!(
            schema.columns[4].ty,
            ColumnType::Array(Box::new(ColumnType::Array(Box::new(ColumnType::Int))))
        );
    }

    #[test]
    fn key_columns_must_be_an_ordered_prefix() {
        let err = parse("CREATE TABLE t (a INT, b INT) PRIMARY KEY (b) DISTRIBUTED BY HASH(b)")
            .unwrap_err();
        assert!(err.message.contains("ordered prefix"), "{err}");
    }

    #[test]
    fn parses_select_with_where_order_limit() {
        let Statement::Select(s) = parse(
            "select id, name from t where id >= 3 and name is not null order by id desc limit 5",
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(s.items.len(), 2);
        assert!(s.filter.is_some());
        assert_eq!(s.order.len(), 1);
        assert_eq!(s.limit, Some(5));
    }

    #[test]
    fn bad_sql_is_an_error_not_a_panic() {
        for sql in [
            "",
            "selec",
            "select from",
            "create table (",
            "alter table t add",
            "'",
            "`x",
        ] {
            assert!(parse(sql).is_err(), "{sql}");
        }
    }
}
