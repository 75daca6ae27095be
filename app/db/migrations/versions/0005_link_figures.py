"""link figures: indexes for each link's clicks and leads (2026-11-24)"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'


def upgrade() -> None:
    # Partial: only link_opened rows are indexed, so the hot event inserts barely pay for it.
    op.create_index(
        'ix_funnel_event_link_opened',
        'funnel_event',
        ['link_id'],
        unique=False,
        postgresql_where=sa.text("name = 'link_opened'"),
        sqlite_where=sa.text("name = 'link_opened'"),
    )
    op.create_index(op.f('ix_lead_last_link_id'), 'lead', ['last_link_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_lead_last_link_id'), table_name='lead')
    op.drop_index('ix_funnel_event_link_opened', table_name='funnel_event')
