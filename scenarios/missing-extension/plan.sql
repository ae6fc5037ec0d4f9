-- Retire one product. The shadow lacks PostGIS, so the stores table could not be reproduced: the report says so,
-- names the extension and its package, and the plan, which does not touch stores, is still measured.
DELETE FROM public.products WHERE id = 2;
