"""double random, one public inspections: the inspector pool, draws and their inspections

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08 00:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inspectors",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("street", sa.String(length=100), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_inspectors_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspectors")),
    )
    with op.batch_alter_table("inspectors", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inspectors_user_id"), ["user_id"], unique=False)
    op.create_table(
        "inspection_draws",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=200), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("candidates", sa.JSON(), nullable=False),
        sa.Column("pool", sa.JSON(), nullable=False),
        sa.Column("inputs_sha256", sa.String(length=64), nullable=False),
        sa.Column("commitment", sa.String(length=64), nullable=False),
        sa.Column("commitment_leaf", sa.Integer(), nullable=True),
        sa.Column("seed", sa.String(length=128), nullable=False),
        sa.Column("outcome", sa.JSON(), nullable=True),
        sa.Column("drawn_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("drawn_by", sa.String(length=64), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_leaf", sa.Integer(), nullable=True),
        sa.Column("public", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspection_draws")),
        sa.UniqueConstraint("purpose", name=op.f("uq_inspection_draws_purpose")),
    )
    op.create_table(
        "inspections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("draw_id", sa.Integer(), nullable=False),
        sa.Column("party_id", sa.Integer(), nullable=False),
        sa.Column("inspectors", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("checklist", sa.JSON(), nullable=True),
        sa.Column("result", sa.String(length=16), nullable=True),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column("package_id", sa.String(length=64), nullable=True),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("inspected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recorded_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_inspections_case_id_cases")),
        sa.ForeignKeyConstraint(
            ["draw_id"], ["inspection_draws.id"], name=op.f("fk_inspections_draw_id_inspection_draws")
        ),
        sa.ForeignKeyConstraint(["party_id"], ["parties.id"], name=op.f("fk_inspections_party_id_parties")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspections")),
        sa.UniqueConstraint("draw_id", "party_id", name=op.f("uq_inspections_draw_id")),
    )
    with op.batch_alter_table("inspections", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inspections_draw_id"), ["draw_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_inspections_inspected_at"), ["inspected_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_inspections_party_id"), ["party_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_inspections_state"), ["state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("inspections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inspections_state"))
        batch_op.drop_index(batch_op.f("ix_inspections_party_id"))
        batch_op.drop_index(batch_op.f("ix_inspections_inspected_at"))
        batch_op.drop_index(batch_op.f("ix_inspections_draw_id"))
    op.drop_table("inspections")
    op.drop_table("inspection_draws")
    with op.batch_alter_table("inspectors", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inspectors_user_id"))
    op.drop_table("inspectors")
