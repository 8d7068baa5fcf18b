//! DDL parsing: column types and definitions, CREATE TABLE (Primary Key rules of spec §6.2)
//! and ALTER TABLE actions (§6.3). A second `impl` block of [`Parser`].

use crate::catalog::{Column, SqlError, TableSchema};
use crate::sql::lexer::Token;
use crate::sql::parser::{AlterAction, Parser, Position, Statement};
use crate::types::ColumnType;

impl Parser {
    pub(super) fn number(&mut self) -> Result<u32, SqlError> {
        match self.peek() {
            Some(Token::Number(n)) => {
                let v = n.parse().map_err(|_| self.error())?;
                self.pos += 1;
                Ok(v)
            }
            _ => Err(self.error()),
        }
    }
    pub(super) fn paren_numbers(&mut self) -> Result<Vec<u32>, SqlError> {
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
    pub(super) fn column_type(&mut self) -> Result<ColumnType, SqlError> {
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
    pub(super) fn column_def(&mut self) -> Result<(Column, bool), SqlError> {
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
                column_id: name.clone(),
                name,
                ty,
                nullable,
                default,
                comment,
            },
            explicit_null,
        ))
    }
    pub(super) fn ident_list(&mut self) -> Result<Vec<String>, SqlError> {
        self.expect_sym("(")?;
        let mut names = vec![self.ident()?];
        while self.eat_sym(",") {
            names.push(self.ident()?);
        }
        self.expect_sym(")")?;
        Ok(names)
    }
    pub(super) fn create_table(&mut self) -> Result<Statement, SqlError> {
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
    pub(super) fn alter_action(&mut self) -> Result<AlterAction, SqlError> {
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
        if self.eat_kw("rename") {
            // `RENAME COLUMN old TO new`: the grammar requires TO (the docs' `[ TO ]` is wrong).
            self.expect_kw("column")?;
            let old = self.ident()?;
            if !self.eat_kw("to") {
                return Err(self.error_expecting("'TO'"));
            }
            let new = self.ident()?;
            return Ok(AlterAction::RenameColumn { old, new });
        }
        Err(self.error())
    }

    /// `AlterTableStatementAnalyzer.checkAlterOpConflict`: of the clause kinds the emulator
    /// knows, only schema changes (ADD/DROP/MODIFY COLUMN) combine, so a RENAME must stand
    /// alone. Reads ahead without moving; only the first clause is executed.
    pub(super) fn check_alter_conflicts(&self) -> Result<(), SqlError> {
        let mut kinds = Vec::new();
        let mut depth = 0i32;
        let mut start = self.pos;
        for (i, token) in self.tokens.iter().enumerate().skip(self.pos) {
            match token {
                Token::Sym("(") => depth += 1,
                Token::Sym(")") => depth -= 1,
                Token::Sym(",") if depth == 0 => {
                    kinds.push((start, self.alter_op_type(start)));
                    start = i + 1;
                }
                _ => {}
            }
        }
        kinds.push((start, self.alter_op_type(start)));
        if kinds.len() < 2 || !kinds.iter().any(|(_, k)| *k == Some("RENAME")) {
            return Ok(());
        }
        for (i, (at, kind)) in kinds.iter().enumerate() {
            let Some(kind) = kind else {
                // A clause the emulator cannot classify (nor run): a syntax error there.
                return Err(Parser {
                    tokens: self.tokens.clone(),
                    pos: *at,
                }
                .error());
            };
            if let Some(earlier) = kinds[..i]
                .iter()
                .filter_map(|(_, k)| *k)
                .find(|k| !(*k == "SCHEMA_CHANGE" && *kind == "SCHEMA_CHANGE"))
            {
                return Err(SqlError::new(format!(
                    "Getting analyzing error. Detail message: Alter operation {kind} conflicts with operation {earlier}."
                )));
            }
        }
        Ok(())
    }

    /// The `AlterOpType` of the clause starting at token `at`, for the kinds the emulator knows.
    fn alter_op_type(&self, at: usize) -> Option<&'static str> {
        let kw = |i: usize, word: &str| self.tokens.get(i).is_some_and(|t| t.is_kw(word));
        if kw(at, "rename") {
            Some("RENAME")
        } else if (kw(at, "add") || kw(at, "drop") || kw(at, "modify")) && kw(at + 1, "column") {
            Some("SCHEMA_CHANGE")
        } else {
            None
        }
    }
}
