"""tool submissions (2026-11-23)"""

from app.db.migrations.shapes import create_table, drop_tables, integer, json, moment, reference

revision = '0003'
down_revision = '0002'


def upgrade() -> None:
    create_table('submission',
        reference('tool_id', 'tool', ondelete='CASCADE'),
        integer('tool_version'),
        reference('visitor_id', 'visitor', ondelete='SET NULL'),
        reference('lead_id', 'lead', ondelete='SET NULL'),
        moment('created_at'),
        json('inputs'),
        json('outputs'),
        json('summary'),
        indexes=['lead_id', 'visitor_id'],
        named_indexes={'ix_submission_tool_at': ['tool_id', 'created_at']},
    )


def downgrade() -> None:
    drop_tables('submission')
