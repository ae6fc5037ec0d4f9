--
-- PostgreSQL database dump
--

-- Dumped from database version 16.4 (Ubuntu 16.4-1.pgdg22.04+1)
-- Dumped by pg_dump version 16.4 (Ubuntu 16.4-1.pgdg22.04+1)

SET statement_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);

CREATE EXTENSION IF NOT EXISTS postgis WITH SCHEMA public;

CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;

CREATE TABLE public.stores (
    id integer NOT NULL,
    name text NOT NULL,
    location public.geometry(Point,4326)
);

CREATE TABLE public.products (
    id integer NOT NULL,
    name text NOT NULL
);

CREATE FUNCTION public.stores_near(p public.geometry) RETURNS SETOF integer
    LANGUAGE sql STABLE
    AS $$ SELECT id FROM public.stores WHERE public.st_dwithin(location, p, 0.01) $$;

COPY public.products (id, name) FROM stdin;
1	apple
2	pear
3	plum
\.

COPY public.stores (id, name, location) FROM stdin;
1	Main Street	0101000020E6100000000000000000F03F000000000000F03F
\.

ALTER TABLE ONLY public.products
    ADD CONSTRAINT products_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.stores
    ADD CONSTRAINT stores_pkey PRIMARY KEY (id);

CREATE INDEX products_name_trgm ON public.products USING gin (name public.gin_trgm_ops);

CREATE INDEX stores_location_idx ON public.stores USING gist (location);
