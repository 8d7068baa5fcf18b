-- The demo e-commerce schema (the same tables `dbmazz demo` creates), run once by the
-- postgres image's entrypoint on an empty data directory. Database: demo_db (POSTGRES_DB).

CREATE TABLE customers (
    id          bigserial PRIMARY KEY,
    email       text NOT NULL UNIQUE,
    name        text NOT NULL,
    country     char(2),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE products (
    id          bigserial PRIMARY KEY,
    sku         varchar(32) NOT NULL UNIQUE,
    name        text NOT NULL,
    price       numeric(12,2) NOT NULL,
    attributes  jsonb NOT NULL DEFAULT '{}',
    description text            -- large: TOASTed, often unchanged by updates
);

CREATE TABLE orders (
    id          bigserial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers(id),
    status      text NOT NULL DEFAULT 'new',
    total       numeric(14,2) NOT NULL DEFAULT 0,
    placed_at   timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz      -- soft delete: the row stays, marked
);

CREATE TABLE order_items (
    order_id    bigint NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
    line        int NOT NULL,
    product_id  bigint NOT NULL REFERENCES products(id),
    quantity    int NOT NULL,
    unit_price  numeric(12,2) NOT NULL,
    PRIMARY KEY (order_id, line)
);

-- A starting data set: 500 customers, 200 products, 2,000 orders, ~5,000 items.
INSERT INTO customers (email, name, country)
SELECT 'customer' || i || '@example.com', 'Customer ' || i,
       (ARRAY['US','DE','FR','BR','JP','IN'])[1 + i % 6]
FROM generate_series(1, 500) AS i;

INSERT INTO products (sku, name, price, attributes, description)
SELECT 'SKU-' || lpad(i::text, 5, '0'), 'Product ' || i, (5 + (i * 37) % 500)::numeric(12,2),
       jsonb_build_object('color', (ARRAY['red','green','blue'])[1 + i % 3], 'weight_g', 100 + i),
       repeat('A long description of product ' || i || '. ', 200)
FROM generate_series(1, 200) AS i;

INSERT INTO orders (customer_id, status, placed_at)
SELECT 1 + (i * 7) % 500, (ARRAY['new','paid','shipped','delivered'])[1 + i % 4],
       now() - (i || ' minutes')::interval
FROM generate_series(1, 2000) AS i;

INSERT INTO order_items (order_id, line, product_id, quantity, unit_price)
SELECT o.id, l.line, 1 + (o.id * 13 + l.line) % 200, 1 + (o.id + l.line) % 4, p.price
FROM orders o
CROSS JOIN LATERAL generate_series(1, 1 + (o.id % 4)::int) AS l(line)
JOIN products p ON p.id = 1 + (o.id * 13 + l.line) % 200;

UPDATE orders o SET total = s.total
FROM (SELECT order_id, sum(quantity * unit_price) AS total FROM order_items GROUP BY order_id) s
WHERE s.order_id = o.id;

-- What dbmazz needs, and no more (docs/operations.md, "Privileges"): a role that may open a
-- replication connection and read the tables; the publication is created here by the owner.
CREATE ROLE dbmazz WITH LOGIN REPLICATION PASSWORD 'dbmazz';
GRANT SELECT ON customers, products, orders, order_items TO dbmazz;
CREATE PUBLICATION dbmazz_pub FOR TABLE customers, products, orders, order_items;
