"""bookings: a visitor's request for a visit through a tool's call to action (2026-12-02)"""

from app.db.migrations.shapes import create_table, date, drop_tables, integer, moment, reference, string, timestamps

revision = '0007'
down_revision = '0006'


def upgrade() -> None:
    create_table('booking',
        reference('lead_id', 'lead', ondelete='CASCADE'),
        reference('tool_id', 'tool', ondelete='CASCADE'),
        integer('tool_version'),
        reference('visitor_id', 'visitor', ondelete='SET NULL'),
        string('service', 64),
        date('slot_day'),
        string('slot_part', 16),
        string('note', 800),
        string('state', 16),
        moment('booked_at'),
        moment('contacted_at', nullable=True),
        string('contacted_by', 64),
        *timestamps(),
        unique=[('lead_id', 'tool_id')],
        indexes=['tool_id'],
        named_indexes={'ix_booking_state_booked_at': ['state', 'booked_at']},
    )


def downgrade() -> None:
    drop_tables('booking')
