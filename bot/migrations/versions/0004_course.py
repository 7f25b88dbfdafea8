"""course: groups, enrolments, lesson deliveries and answers, questions for the teacher

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 19:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "course_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("team", sa.String(length=32), nullable=False),
        sa.Column("teacher_email", sa.String(length=254), nullable=False),
        sa.Column("days", sa.String(length=32), nullable=False),
        sa.Column("session_time", sa.String(length=5), nullable=False),
        sa.Column("timezone", sa.String(length=40), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "enrolments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("first_lesson", sa.Integer(), nullable=False),
        sa.Column("enrolled_by", sa.String(length=64), nullable=False),
        sa.Column("enrolled_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversations.id"], ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(["group_id"], ["course_groups.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("group_id", "client_id"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("enrolments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_enrolments_client_id"), ["client_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_enrolments_group_id"), ["group_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_enrolments_status"), ["status"], unique=False
        )

    op.create_table(
        "course_questions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=16), nullable=False),
        sa.Column("enrolment_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("lesson", sa.Integer(), nullable=True),
        sa.Column("finnish", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(), nullable=True),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("answered_at", sa.DateTime(), nullable=True),
        sa.Column("answered_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["enrolment_id"], ["enrolments.id"], ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("reference"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("course_questions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_course_questions_enrolment_id"),
            ["enrolment_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_course_questions_status"), ["status"], unique=False
        )

    op.create_table(
        "lesson_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enrolment_id", sa.Integer(), nullable=False),
        sa.Column("lesson", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("question", sa.Integer(), nullable=False),
        sa.Column("choice", sa.Integer(), nullable=True),
        sa.Column("correct", sa.Boolean(), nullable=True),
        sa.Column("answered_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["enrolment_id"], ["enrolments.id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("enrolment_id", "lesson", "kind", "question"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("lesson_answers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lesson_answers_enrolment_id"), ["enrolment_id"], unique=False
        )

    op.create_table(
        "lesson_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enrolment_id", sa.Integer(), nullable=False),
        sa.Column("lesson", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("read_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["enrolment_id"], ["enrolments.id"], ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("enrolment_id", "lesson", "kind"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("lesson_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lesson_deliveries_enrolment_id"),
            ["enrolment_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_lesson_deliveries_message_id"), ["message_id"], unique=False
        )

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("content_sid", sa.String(length=34), nullable=True)
        )
        batch_op.add_column(
            sa.Column("content_variables", sa.String(length=1000), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("content_variables")
        batch_op.drop_column("content_sid")

    with op.batch_alter_table("lesson_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lesson_deliveries_message_id"))
        batch_op.drop_index(batch_op.f("ix_lesson_deliveries_enrolment_id"))

    op.drop_table("lesson_deliveries")
    with op.batch_alter_table("lesson_answers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lesson_answers_enrolment_id"))

    op.drop_table("lesson_answers")
    with op.batch_alter_table("course_questions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_course_questions_status"))
        batch_op.drop_index(batch_op.f("ix_course_questions_enrolment_id"))

    op.drop_table("course_questions")
    with op.batch_alter_table("enrolments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enrolments_status"))
        batch_op.drop_index(batch_op.f("ix_enrolments_group_id"))
        batch_op.drop_index(batch_op.f("ix_enrolments_client_id"))

    op.drop_table("enrolments")
    op.drop_table("course_groups")
