"""draw tally: a draw's entrant count kept with its entries (2026-12-02)"""

from alembic import op

from app.db.migrations.shapes import create_table, drop_tables, integer, reference

revision = '0010'
down_revision = '0009'


def upgrade() -> None:
    create_table('draw_tally',
        reference('draw_id', 'draw', ondelete='CASCADE'),
        integer('slot'),
        integer('entrants'),
        primary_key=('draw_id', 'slot'),
    )
    op.execute(
        'INSERT INTO draw_tally (draw_id, slot, entrants) '
        'SELECT draw_id, 0, count(*) FROM draw_entry GROUP BY draw_id'
    )


def downgrade() -> None:
    drop_tables('draw_tally')
