"""bookings: a visitor's request for a visit through a tool's call to action (2026-12-02)"""

import sqlalchemy as sa

from app.db.migrations.shapes import create_table, drop_tables, moment, reference, timestamps

revision = '0007'
down_revision = '0006'


def upgrade() -> None:
    create_table('booking',
        reference('lead_id', 'lead', ondelete='CASCADE'),
        reference('tool_id', 'tool', ondelete='CASCADE'),
        sa.Column('tool_version', sa.Integer(), nullable=False),
        reference('visitor_id', 'visitor', ondelete='SET NULL'),
        sa.Column('service', sa.String(length=64), nullable=False),
        sa.Column('slot_day', sa.Date(), nullable=False),
        sa.Column('slot_part', sa.String(length=16), nullable=False),
        sa.Column('note', sa.String(length=800), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        moment('booked_at'),
        moment('contacted_at', nullable=True),
        sa.Column('contacted_by', sa.String(length=64), nullable=False),
        *timestamps(),
        unique=[('lead_id', 'tool_id')],
        indexes=['tool_id'],
        named_indexes={'ix_booking_state_booked_at': ['state', 'booked_at']},
    )


def downgrade() -> None:
    drop_tables('booking')
