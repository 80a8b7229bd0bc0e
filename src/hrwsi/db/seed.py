"""Seed the cold tables (routines, conditions, product types) from the configuration."""

from __future__ import annotations

import psycopg
from psycopg.rows import TupleRow

from hrwsi.config import Config
from hrwsi.db import queries


async def seed(conn: psycopg.AsyncConnection[TupleRow], config: Config) -> int:
    """Upsert the configured routines and conditions; return how many rows changed."""
    changed = 0
    async with conn.transaction(), conn.cursor() as cur:
        # Declared product types first: they name their level (data type) themselves.
        for product_type in config.product_types:
            await cur.execute(
                queries.get("seed_product_type"),
                {
                    "code": product_type.code,
                    "data_type": product_type.processing_level or None,
                    "description": product_type.description,
                },
            )
            changed += max(cur.rowcount, 0)
        for routine in config.routines:
            await cur.execute(
                queries.get("seed_product_type"),
                {
                    "code": routine.product_type_code,
                    "data_type": routine.product_data_type,
                    "description": f"made by {routine.name}",
                },
            )
            changed += max(cur.rowcount, 0)
            await cur.execute(
                queries.get("seed_routine"),
                {
                    "name": routine.name,
                    "cpu": routine.cpu,
                    "ram": routine.ram,
                    "storage": routine.storage,
                    "duration": routine.duration,
                    "docker_image": routine.docker_image or None,
                    "input_type": routine.input_type,
                    "product_data_type": routine.product_data_type,
                    "product_type_code": routine.product_type_code,
                },
            )
            changed += max(cur.rowcount, 0)
        for cond in config.processing_conditions:
            await cur.execute(
                queries.get("seed_condition"),
                {"name": cond.name, "routine": cond.routine, "description": cond.description},
            )
            changed += max(cur.rowcount, 0)
    return changed
