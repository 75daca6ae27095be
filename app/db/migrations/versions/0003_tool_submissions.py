"""tool submissions (2026-11-23)"""

import sqlalchemy as sa

from app.db.migrations.shapes import create_table, drop_tables, moment, reference

revision = '0003'
down_revision = '0002'


def upgrade() -> None:
    create_table('submission',
        reference('tool_id', 'tool', ondelete='CASCADE'),
        sa.Column('tool_version', sa.Integer(), nullable=False),
        reference('visitor_id', 'visitor', ondelete='SET NULL'),
        reference('lead_id', 'lead', ondelete='SET NULL'),
        moment('created_at'),
        sa.Column('inputs', sa.JSON(), nullable=False),
        sa.Column('outputs', sa.JSON(), nullable=False),
        sa.Column('summary', sa.JSON(), nullable=False),
        indexes=['lead_id', 'visitor_id'],
        named_indexes={'ix_submission_tool_at': ['tool_id', 'created_at']},
    )


def downgrade() -> None:
    drop_tables('submission')
