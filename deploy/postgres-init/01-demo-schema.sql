-- The demo's e-commerce schema, the same tables and columns `dbmazz demo` creates
-- (crates/dbmazz/src/demo/schema.rs; a test keeps the two in step). Run once by the postgres
-- image's entrypoint on an empty data directory, in demo_db (POSTGRES_DB).

CREATE TABLE customers (
    id bigint PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL,
    city text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE products (
    id int PRIMARY KEY,
    name text NOT NULL,
    price numeric(10,2) NOT NULL,
    attrs jsonb,
    stock int NOT NULL
);
CREATE TABLE orders (
    id bigint PRIMARY KEY,
    customer_id bigint NOT NULL,
    status text NOT NULL,
    total numeric(12,2) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    notes text
);
-- Stored out of line: status updates then leave an unchanged TOAST value.
ALTER TABLE orders ALTER COLUMN notes SET STORAGE EXTERNAL;
CREATE TABLE order_items (
    order_id bigint NOT NULL,
    line_no int NOT NULL,
    product_id int NOT NULL,
    qty int NOT NULL,
    unit_price numeric(10,2) NOT NULL,
    attrs jsonb,
    PRIMARY KEY (order_id, line_no)
);
CREATE SEQUENCE order_ids START 1;

-- What dbmazz needs, and no more (docs/operations.md, "Privileges to grant"): a role that may
-- open a replication connection and read the tables; the owner creates the publication.
CREATE ROLE dbmazz WITH LOGIN REPLICATION PASSWORD 'dbmazz';
GRANT SELECT ON customers, products, orders, order_items TO dbmazz;
CREATE PUBLICATION dbmazz_pub FOR TABLE customers, products, orders, order_items;

-- The seed: 500 customers, 200 products, 2,000 orders, ~5,000 items. dbmazz copies it with its
-- initial snapshot.
INSERT INTO customers (id, name, email, city, created_at)
SELECT g, 'Customer ' || g, 'customer' || g || '@example.com',
       (ARRAY['Lisbon','Berlin','Lima','Osaka','Austin','Nairobi'])[1 + g % 6],
       now() - (g || ' minutes')::interval
FROM generate_series(1, 500) g;

INSERT INTO products (id, name, price, attrs, stock)
SELECT g, 'Product ' || g, round((5 + random() * 495)::numeric, 2),
       jsonb_build_object('color', (ARRAY['red','green','blue','black'])[1 + g % 4],
                          'tags', jsonb_build_array('demo', 'p' || g), 'weight_g', 100 + g),
       (random() * 1000)::int
FROM generate_series(1, 200) g;

INSERT INTO orders (id, customer_id, status, total, created_at, updated_at, notes)
SELECT nextval('order_ids'), 1 + (g * 7) % 500,
       (ARRAY['new','paid','shipped','delivered'])[1 + g % 4],
       round((10 + random() * 990)::numeric, 2),
       now() - (g || ' seconds')::interval, now(),
       CASE WHEN g % 10 = 0
            THEN (SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 256)) END
FROM generate_series(1, 2000) g;

INSERT INTO order_items (order_id, line_no, product_id, qty, unit_price, attrs)
SELECT o.id, l, 1 + (o.id * 13 + l) % 200, 1 + (o.id + l) % 5,
       round((5 + random() * 95)::numeric, 2),
       jsonb_build_object('gift', (o.id + l) % 7 = 0, 'source', 'seed')
FROM orders o, generate_series(1, 1 + (o.id % 4)::int) l;
