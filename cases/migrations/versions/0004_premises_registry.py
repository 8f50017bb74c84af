"""premises registry: registry code, street and grid, category and grades, purifier; permits

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 00:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("parties", schema=None) as batch_op:
        batch_op.add_column(sa.Column("code", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("street", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("grid", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("category", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("size_class", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("risk_grade", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("purifier", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("contact", sa.String(length=200), server_default="", nullable=False))
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_parties_code"), ["code"])
        batch_op.create_index(batch_op.f("ix_parties_street"), ["street"], unique=False)

    op.create_table(
        "permits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("party_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("number", sa.String(length=64), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("area", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["party_id"], ["parties.id"], name=op.f("fk_permits_party_id_parties")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_permits")),
        sa.UniqueConstraint("party_id", "number", name=op.f("uq_permits_party_id")),
    )
    with op.batch_alter_table("permits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_permits_party_id"), ["party_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("permits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_permits_party_id"))
    op.drop_table("permits")
    with op.batch_alter_table("parties", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_parties_street"))
        batch_op.drop_constraint(batch_op.f("uq_parties_code"), type_="unique")
        for column in (
            "updated_at",
            "contact",
            "purifier",
            "risk_grade",
            "size_class",
            "category",
            "grid",
            "street",
            "code",
        ):
            batch_op.drop_column(column)
