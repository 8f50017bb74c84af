"""review: detections with officers' corrections, queue priority, zone polygons; access: passwords,
bearer tokens, party access codes and statements

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 00:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("password_hash", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("zones", schema=None) as batch_op:
        batch_op.add_column(sa.Column("polygon", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("edited_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("edited_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("priority", sa.Integer(), server_default="0", nullable=False))
        batch_op.create_index("ix_cases_queue", ["state", "priority", "opened_at"], unique=False)
        batch_op.create_index("ix_cases_state_opened", ["state", "opened_at"], unique=False)
        batch_op.create_index("ix_cases_camera_kind_opened", ["camera_id", "kind", "opened_at"], unique=False)

    op.create_table(
        "detections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.String(length=64), nullable=False),
        sa.Column("camera_id", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("frame", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("x1", sa.Float(), nullable=False),
        sa.Column("y1", sa.Float(), nullable=False),
        sa.Column("x2", sa.Float(), nullable=False),
        sa.Column("y2", sa.Float(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("track_id", sa.Integer(), nullable=True),
        sa.Column("corrected_label", sa.String(length=64), nullable=True),
        sa.Column("corrected_box", sa.JSON(), nullable=True),
        sa.Column("corrected_by", sa.String(length=64), nullable=True),
        sa.Column("corrected_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_detections_case_id_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_detections")),
    )
    with op.batch_alter_table("detections", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_detections_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_detections_package_id"), ["package_id"], unique=False)
        batch_op.create_index("ix_detections_camera_at", ["camera_id", "at"], unique=False)

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("camera_id", sa.String(length=64), nullable=True),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["camera_id"], ["cameras.id"], name=op.f("fk_api_tokens_camera_id_cameras")),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_api_tokens_case_id_cases")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_api_tokens_token_sha256")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_api_tokens_user_id"), ["user_id"], unique=False)

    op.create_table(
        "case_access_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("code_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_case_access_codes_case_id_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_access_codes")),
        sa.UniqueConstraint("code_sha256", name=op.f("uq_case_access_codes_code_sha256")),
    )
    with op.batch_alter_table("case_access_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_access_codes_case_id"), ["case_id"], unique=False)

    op.create_table(
        "party_statements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("contact", sa.String(length=200), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_party_statements_case_id_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_party_statements")),
    )
    with op.batch_alter_table("party_statements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_party_statements_case_id"), ["case_id"], unique=False)


def downgrade() -> None:
    for table, indexes in (
        ("party_statements", ["ix_party_statements_case_id"]),
        ("case_access_codes", ["ix_case_access_codes_case_id"]),
        ("api_tokens", ["ix_api_tokens_user_id", "ix_api_tokens_expires_at"]),
        ("detections", ["ix_detections_camera_at", "ix_detections_package_id", "ix_detections_case_id"]),
    ):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for index in indexes:
                batch_op.drop_index(index)
        op.drop_table(table)
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_camera_kind_opened")
        batch_op.drop_index("ix_cases_state_opened")
        batch_op.drop_index("ix_cases_queue")
        batch_op.drop_column("priority")
    with op.batch_alter_table("zones", schema=None) as batch_op:
        batch_op.drop_column("edited_at")
        batch_op.drop_column("edited_by")
        batch_op.drop_column("polygon")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("last_login_at")
        batch_op.drop_column("password_hash")
